/**
 * A saga step that outlives its timeout, on PostgreSQL and MariaDB. The workflow compensates every
 * step it started, the timed-out one included, while that step is still running:
 * - late before its barrier (a pause, a partition): the compensation finds nothing to undo
 *   (`null-compensation`) and leaves the row that turns the late action away (`dangling`);
 * - late while holding its transaction (rows written, not committed): the compensation waits for
 *   that transaction instead of overtaking it, then undoes the committed step (`applied`).
 * Either way the compensation and the late commit never both take effect unmatched, and money is
 * conserved. The control runs the first case without the barrier: both apply.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import type { OutcomeEvent } from '../../../src/index.js';
import { bankActivities } from './activities.js';
import { temporalTestbed } from './testbed.js';
import { type BankEngine, bankSpec, createBank, destroyBank, openBank } from '../bank.js';
import type { saga, SagaInput } from './workflows.js';

const bed = temporalTestbed();
const { namespace, bundle } = bed;

const OPENING = 1000;
const AMOUNT = 70;

/** Runs one saga whose debit is late in the given way; waits for the late action to settle too. */
async function runSaga(engine: BankEngine, late: SagaInput['late'], guarded: boolean) {
  const spec = bankSpec(engine, 'temporal');
  await createBank(spec, { alice: OPENING, bob: OPENING });
  const events: OutcomeEvent[] = [];
  const bank = await openBank(spec, { onOutcome: (event) => void events.push(event) });
  const workflowId = `saga-${randomUUID()}`;
  const taskQueue = `${workflowId}-queue`;
  try {
    const worker = await Worker.create({
      connection: bed.workerConnection,
      namespace,
      taskQueue,
      workflowBundle: { codePath: bundle },
      activities: bankActivities(bank, { guarded }),
    });
    const result = await worker.runUntil(async () => {
      const result = await bed.client.workflow.execute<typeof saga>('saga', {
        taskQueue,
        workflowId,
        args: [{ from: 'alice', to: 'bob', amount: AMOUNT, late }],
      });
      // The late action is still running in this worker: wait until its transaction has settled.
      const deadline = Date.now() + 20_000;
      const settled = () => (guarded ? events.filter((e) => e.op === 'action').length : 0) > 0;
      while (guarded && !settled() && Date.now() < deadline) await sleep(50);
      if (!guarded) await sleep(4000);
      return result;
    });
    return { workflowId, result, events, entries: await bank.entries(), balances: await bank.balances() };
  } finally {
    await bank.close();
    await destroyBank(spec);
  }
}

describe.each(['postgres', 'mysql'] as const)('Temporal saga with a step that outlives its timeout (%s)', (engine) => {
  it('late before its barrier: null-compensation, then the late action is dangling; nothing applies', async () => {
    const { result, events, entries, balances } = await runSaga(engine, 'before-barrier', true);
    expect(result).toEqual({ actions: ['timed-out'], compensations: ['null-compensation'] });
    // The outcomes carry the order: `dangling` means the action found the compensation's committed row.
    // (The hooks' own order is not the database's: each reports after its COMMIT's reply is read.)
    expect(events.map((e) => [e.branchId, e.op, e.outcome, e.committed]).sort()).toEqual([
      ['debit', 'action', 'dangling', true],
      ['debit', 'compensate', 'null-compensation', true],
    ]);
    expect(entries).toEqual([]);
    expect(balances).toEqual({ alice: OPENING, bob: OPENING });
  });

  it('late while holding its transaction: the compensation waits for its commit, then undoes it', async () => {
    const { workflowId, result, events, entries, balances } = await runSaga(engine, 'holding-transaction', true);
    expect(result).toEqual({ actions: ['timed-out'], compensations: ['applied'] });
    // The compensation's first attempts may give up waiting (lock timeout: `ongoing`) and retry. Its
    // `applied` means it found the action's row committed (else it would be a null compensation).
    const settled = events.filter((e) => e.outcome !== 'ongoing').map((e) => [e.branchId, e.op, e.outcome]);
    expect(settled.sort()).toEqual([
      ['debit', 'action', 'applied'],
      ['debit', 'compensate', 'applied'],
    ]);
    expect(entries).toEqual([
      { gid: workflowId, step: 'debit', op: 'action', account: 'alice', delta: -AMOUNT },
      { gid: workflowId, step: 'debit', op: 'compensate', account: 'alice', delta: AMOUNT },
    ]);
    expect(balances).toEqual({ alice: OPENING, bob: OPENING });
  });
});

describe('Temporal saga without the barrier (the control)', () => {
  it('late before its step: the compensation and the late action both apply', async () => {
    const { workflowId, result, entries } = await runSaga('postgres', 'before-barrier', false);
    expect(result).toEqual({ actions: ['timed-out'], compensations: ['applied'] });
    expect(entries.map((e) => [e.gid, e.op])).toEqual([
      [workflowId, 'compensate'],
      [workflowId, 'action'],
    ]);
  });
});

describe('the SDK', () => {
  it('warned only that each late action completed after its timeout (5 late actions above)', () => {
    expect(bed.log).toEqual(Array(5).fill('WARN Activity not found on completion. This may happen if the activity has already been cancelled but completed anyway.'));
  });
});
