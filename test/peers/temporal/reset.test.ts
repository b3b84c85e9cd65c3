/**
 * A reset re-runs the steps after its reset point in a new run of the same workflow id; the barrier
 * is keyed by the workflow id (not the run id), so a step that committed in the first run is
 * recognised, not applied again (docs/temporal.md, "Workflow ids, resets and continue-as-new").
 */
import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { bankActivities } from './activities.js';
import { temporalTestbed } from './testbed.js';
import { bankSpec, createBank, destroyBank, openBank } from '../bank.js';
import type { transfer } from './workflows.js';

const bed = temporalTestbed();
const { namespace, bundle } = bed;

/** Runs a transfer to the end, resets it to its first workflow task, and waits for the new run. */
async function transferThenReset(guarded: boolean) {
  const spec = bankSpec('postgres', 'temporal');
  await createBank(spec, { alice: 1000, bob: 1000 });
  const bank = await openBank(spec);
  const workflowId = `reset-${randomUUID()}`;
  const taskQueue = `${workflowId}-queue`;
  try {
    const worker = await Worker.create({ connection: bed.workerConnection, namespace, taskQueue, workflowBundle: { codePath: bundle }, activities: bankActivities(bank, { guarded }) });
    const runs = await worker.runUntil(async () => {
      const handle = await bed.client.workflow.start<typeof transfer>('transfer', { taskQueue, workflowId, args: [{ from: 'alice', to: 'bob', amount: 70 }] });
      const first = await handle.result();
      const { events } = await handle.fetchHistory();
      // Back to the end of the first workflow task: before either activity was scheduled.
      const point = events!.find((e) => e.workflowTaskCompletedEventAttributes)!.eventId!;
      const { runId } = await bed.client.workflowService.resetWorkflowExecution({
        namespace,
        workflowExecution: { workflowId, runId: handle.firstExecutionRunId },
        reason: 'test: re-run the transfer',
        workflowTaskFinishEventId: point,
        requestId: randomUUID(),
      });
      const second = await bed.client.workflow.getHandle<typeof transfer>(workflowId, runId).result();
      return { first, second, newRun: runId !== handle.firstExecutionRunId };
    });
    return { ...runs, entries: await bank.entries(), balances: await bank.balances() };
  } finally {
    await bank.close();
    await destroyBank(spec);
  }
}

describe('Temporal: a workflow reset', () => {
  it('re-runs the steps in a new run, and the barrier recognises the ones that committed (PostgreSQL)', async () => {
    const { first, second, newRun, entries, balances } = await transferThenReset(true);
    expect(newRun).toBe(true);
    expect(first).toEqual(['applied', 'applied']);
    expect(second).toEqual(['duplicate', 'duplicate']);
    expect(entries.map((e) => [e.step, e.op])).toEqual([
      ['debit', 'action'],
      ['credit', 'action'],
    ]);
    expect(balances).toEqual({ alice: 930, bob: 1070 });
  });

  it('without the barrier, the reset applies the transfer twice (the control)', async () => {
    const { second, entries, balances } = await transferThenReset(false);
    expect(second).toEqual(['applied', 'applied']);
    expect(entries).toHaveLength(4);
    expect(balances).toEqual({ alice: 860, bob: 1140 });
  });

  it('and the SDK warned of nothing', () => {
    expect(bed.log).toEqual([]);
  });
});
