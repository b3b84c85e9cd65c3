/**
 * Exactly once across worker deaths: a worker is SIGKILLed after an activity's database commit and
 * before the server recorded its completion, so the server runs the activity again on the next
 * worker. With the barrier (`activityBarrier`: workflow id + activity id) the second run finds the
 * row and applies nothing; without it (the control) the step applies twice.
 *
 * CI runs 30 workflows with 3 kills; TXBARRIER_TEMPORAL_LONG=1 (`npm run test:temporal:long`)
 * runs 200 with 20.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applications, type BankSpec, bankSpec, createBank, destroyBank, openBank } from '../bank.js';
import { supervise } from '../supervise.js';
import type { WorkerArgs } from './worker.js';
import type { transfer } from './workflows.js';

const LONG = process.env.TXBARRIER_TEMPORAL_LONG === '1';
const WORKFLOWS = LONG ? 200 : 30;
const KILLS = LONG ? 20 : 3;
const ACCOUNTS = 10;
const OPENING = 100_000;

const { address, namespace, bundle } = inject('temporal');
let connection: Connection;
let client: Client;
beforeAll(async () => {
  connection = await Connection.connect({ address });
  client = new Client({ connection, namespace });
});
afterAll(() => connection?.close());

/** Runs `count` transfers against a fresh bank with a self-killing worker; returns what happened. */
async function run(spec: BankSpec, count: number, kill: string[], guarded: boolean) {
  const prefix = `kill-${randomUUID().slice(0, 8)}`;
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);
  await createBank(spec, Object.fromEntries(accounts.map((a) => [a, OPENING])));
  const taskQueue = `${prefix}-queue`;
  // Each workflow is killed for once: a replacement worker is told only the ones still due.
  const pool = supervise<WorkerArgs>('test/peers/temporal/worker.ts', { address, namespace, taskQueue, bundle, bank: spec, guarded }, kill.map((i) => ids[Number(i)]!));
  const inputs = ids.map((_, i) => ({ from: accounts[i % ACCOUNTS]!, to: accounts[(i + 3) % ACCOUNTS]!, amount: i + 1 }));
  try {
    const handles = await Promise.all(
      ids.map((workflowId, i) => client.workflow.start<typeof transfer>('transfer', { taskQueue, workflowId, args: [inputs[i]!] })),
    );
    // A worker that fails for another reason than its own kill fails the run at once.
    await Promise.race([Promise.all(handles.map((h) => h.result())), pool.failed.then(() => Promise.reject(new Error('workers stopped early')))]);
  } finally {
    await pool.stop();
  }
  const bank = await openBank(spec);
  try {
    return { ids, inputs, killed: pool.killed, stderr: pool.stderr(), entries: await bank.entries(), balances: await bank.balances() };
  } finally {
    await bank.close();
  }
}

/** The highest attempt of any activity in the workflow's history, as the server recorded it. */
async function highestAttempt(workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return Math.max(0, ...(history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0));
}

/**
 * What the workers logged beyond the two warnings a loaded machine and the kills cause: a task
 * that timed out on the server before the worker completed it (the server has already handed it
 * to another attempt). Anything else, and any error, is returned.
 */
function unexpectedWarnings(stderr: string): string[] {
  const expected = ['WARN Task not found when completing', 'WARN Activity not found on completion'];
  return stderr
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        const { level, message } = JSON.parse(line) as { level: string; message: string };
        return `${level} ${message}`;
      } catch {
        return line;
      }
    })
    .filter((line) => !expected.some((e) => line.startsWith(e)));
}

describe('Temporal: a worker killed between the commit and the completion', () => {
  it(`applies every step of ${WORKFLOWS} workflows exactly once across ${KILLS} kills (PostgreSQL)`, async () => {
    const spec = bankSpec('postgres', 'temporal');
    try {
      const step = Math.floor(WORKFLOWS / KILLS);
      const kill = Array.from({ length: KILLS }, (_, k) => String(k * step + 1));
      const { ids, inputs, killed, stderr, entries, balances } = await run(spec, WORKFLOWS, kill, true);
      expect(killed, stderr).toHaveLength(KILLS);
      const counts = applications(entries);
      expect(counts.size).toBe(2 * WORKFLOWS);
      expect([...counts].filter(([, n]) => n !== 1)).toEqual([]);
      // Money conserved, and every account holds exactly what its transfers say.
      const expected: Record<string, number> = Object.fromEntries(Object.keys(balances).map((a) => [a, OPENING]));
      for (const { from, to, amount } of inputs) {
        expected[from]! -= amount;
        expected[to]! += amount;
      }
      expect(balances).toEqual(expected);
      expect(Object.values(balances).reduce((a, b) => a + b, 0)).toBe(ACCOUNTS * OPENING);
      // The server ran each killed workflow's activity again: its history shows a second attempt.
      for (const id of killed) expect(await highestAttempt(id), id).toBeGreaterThanOrEqual(2);
      expect(new Set(killed)).toEqual(new Set(kill.map((i) => ids[Number(i)])));
      expect(unexpectedWarnings(stderr)).toEqual([]);
    } finally {
      await destroyBank(spec);
    }
  }, LONG ? 900_000 : 240_000);

  it('without the barrier, the same kill applies the step twice (the control)', async () => {
    const spec = bankSpec('postgres', 'temporal');
    try {
      const { ids, killed, stderr, entries } = await run(spec, 1, ['0'], false);
      expect(killed, stderr).toEqual([ids[0]]);
      expect(applications(entries).get(`${ids[0]}/debit`)).toBe(2);
    } finally {
      await destroyBank(spec);
    }
  }, 120_000);
});
