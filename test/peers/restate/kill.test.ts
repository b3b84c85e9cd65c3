/**
 * Exactly once across service deaths: the service process is SIGKILLed after a step's database
 * commit and before its `ctx.run` action returns, so before Restate recorded the step. Restate retries
 * the invocation on the replacement process; the replay runs the step again. With the barrier
 * (`runStep`: invocation id + step name + occurrence) that run finds the row and applies nothing;
 * without it (the control) the step applies twice. Restate's own journal (sys_journal) shows the rerun:
 * the killed step's recorded result is `duplicate`. Which transfers and which of their two steps
 * die is drawn from a seed (TXBARRIER_RESTATE_SEED, else random), printed in every assertion.
 *
 * CI runs 30 invocations with 3 kills; TXBARRIER_RESTATE_LONG=1 (`npm run test:restate:long`)
 * runs 200 with 20.
 */
import { randomInt } from 'node:crypto';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { restateAdmin } from '../../../servers/restate.js';
import { seededRandom } from '../../../src/testing/schedule.js';
import { freePort } from '../../../servers/index.js';
import { applications, type BankSpec, bankSpec, createBank, destroyBank, openBank } from '../bank.js';
import { supervise } from '../supervise.js';
import type { ServiceArgs } from './service.js';
import type { TransferInput, TransferResult } from './services.js';

const LONG = process.env.TXBARRIER_RESTATE_LONG === '1';
const INVOCATIONS = LONG ? 200 : 30;
const KILLS = LONG ? 20 : 3;
const ACCOUNTS = 10;
const IN_FLIGHT = 30;
const OPENING = 100_000;
const SEED = Number(process.env.TXBARRIER_RESTATE_SEED ?? randomInt(1, 2 ** 31));

const context = inject('restate');

// On Node < 22 outside CI the setup says why it skips; CI fails instead (setup.ts).
describe.skipIf(context.skipped !== undefined)('Restate kill test', () => {
  const { ingress } = context;
  const admin = restateAdmin(context.admin);
  const name = `kill_${process.pid}`;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
  });

  /** Runs `count` transfers against a fresh bank with a self-killing service; returns what happened. */
  async function run(spec: BankSpec, count: number, kill: string[], guarded: boolean) {
    const ids = Array.from({ length: count }, (_, i) => `t${i}`);
    const accounts = Array.from({ length: ACCOUNTS }, (_, i) => `acct-${i}`);
    await createBank(spec, Object.fromEntries(accounts.map((a) => [a, OPENING])));
    const inputs: TransferInput[] = ids.map((id, i) => ({ id, from: accounts[i % ACCOUNTS]!, to: accounts[(i + 3) % ACCOUNTS]!, amount: i + 1 }));
    const service = supervise<ServiceArgs>('test/peers/restate/service.ts', { name, port, bank: spec, guarded }, kill);
    await Promise.race([service.ready, service.failed]);
    try {
      await admin.register(`http://127.0.0.1:${port}`);
      const call = async (input: TransferInput) => {
        const response = await fetch(`${ingress}/${name}/transfer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
        const text = await response.text();
        if (!response.ok) throw new Error(`transfer ${input.id}: ${response.status} ${text}`);
        return JSON.parse(text) as TransferResult;
      };
      // A service that fails for another reason than its own kill fails the run at once.
      // At most IN_FLIGHT calls at a time, as clients would send them: each kill fails every invocation in flight.
      const results: TransferResult[] = [];
      let next = 0;
      const client = async () => {
        while (next < inputs.length) {
          const i = next++;
          results[i] = await call(inputs[i]!);
        }
      };
      const clients = Promise.all(Array.from({ length: IN_FLIGHT }, client));
      await Promise.race([clients, service.failed.then(() => Promise.reject(new Error('the service stopped early')))]);
      const bank = await openBank(spec);
      try {
        return { inputs, results, killed: service.killed, stderr: service.stderr(), entries: await bank.entries(), balances: await bank.balances() };
      } finally {
        await bank.close();
      }
    } finally {
      await service.stop();
    }
  }

  /** The results Restate's journal holds for an invocation's `ctx.run` steps, by step name (sys_journal). */
  async function journaled(invocationId: string): Promise<Record<string, unknown>> {
    const rows = await admin.query<{ entry_type: string; name: string; entry_json: string }>(
      `SELECT entry_type, name, entry_json FROM sys_journal WHERE id = '${invocationId}' ORDER BY index`,
    );
    interface JournalEntry {
      Command?: { Run?: { completion_id: number; name: string } };
      Notification?: { Completion?: { Run?: { completion_id: number; result: { Success?: number[] } } } };
    }
    const names = new Map<number, string>();
    const results: Record<string, unknown> = {};
    for (const row of rows) {
      const entry = JSON.parse(row.entry_json) as JournalEntry;
      const command = entry.Command?.Run;
      if (command) names.set(command.completion_id, command.name);
      const completion = entry.Notification?.Completion?.Run;
      if (completion?.result.Success) results[names.get(completion.completion_id)!] = JSON.parse(Buffer.from(completion.result.Success).toString('utf8'));
    }
    return results;
  }

  /** What the service processes logged beyond the SDK's one notice per start that the endpoint checks no request signatures. */
  function unexpected(stderr: string): string[] {
    const notice = JSON.stringify({ level: 'warn', message: 'Accepting requests without validating request signatures; handler access must be restricted' });
    return stderr.split('\n').filter((line) => line !== '' && line !== notice);
  }

  describe('Restate: the service killed between the commit and the journal entry', () => {
    it(`applies every step of ${INVOCATIONS} invocations exactly once across ${KILLS} kills (PostgreSQL)`, async () => {
      const spec = bankSpec('postgres', 'restate');
      const draw = seededRandom(SEED);
      const kill = new Set<string>();
      while (kill.size < KILLS) kill.add(`t${Math.floor(draw() * INVOCATIONS)}/${draw() < 0.5 ? 'debit' : 'credit'}`);
      const at = `seed ${SEED}, kills ${[...kill].join(' ')}`;
      try {
        const { inputs, results, killed, stderr, entries, balances } = await run(spec, INVOCATIONS, [...kill], true);
        expect(killed.sort(), `${at}; stderr:\n${stderr}`).toEqual([...kill].sort());
        const counts = applications(entries);
        expect(counts.size, `${at}: (invocation, step) pairs in the ledger`).toBe(2 * INVOCATIONS);
        expect([...counts].filter(([, n]) => n !== 1), `${at}: steps applied other than once`).toEqual([]);
        // Each killed step's rerun found its row: the handler saw `duplicate` for it.
        for (const k of kill) {
          const [id, step] = k.split('/') as [string, 'debit' | 'credit'];
          const result = results[Number(id.slice(1))]!;
          expect(result.outcomes[step === 'debit' ? 0 : 1], `${at}: ${k} (${result.invocationId}) after its rerun`).toBe('duplicate');
        }
        // Money conserved, and every account holds exactly what its transfers say.
        const expected: Record<string, number> = Object.fromEntries(Object.keys(balances).map((a) => [a, OPENING]));
        for (const { from, to, amount } of inputs) {
          expected[from]! -= amount;
          expected[to]! += amount;
        }
        const total = Object.values(balances).reduce((a, b) => a + b, 0);
        expect(total, `${at}: total of ${ACCOUNTS} accounts opened at ${OPENING}`).toBe(ACCOUNTS * OPENING);
        expect(balances, at).toEqual(expected);
        // Restate's own journal: the killed step's recorded result is the rerun's `duplicate` (the first run's result never reached it).
        for (const k of kill) {
          const [id, step] = k.split('/') as [string, string];
          const invocationId = results[Number(id.slice(1))]!.invocationId;
          expect((await journaled(invocationId))[step], `${at}: Restate's journal of ${invocationId} for ${step}`).toBe('duplicate');
        }
        expect(unexpected(stderr), at).toEqual([]);
      } finally {
        await destroyBank(spec);
      }
    }, LONG ? 1_200_000 : 240_000);

    it('without the barrier, the same kill applies the step twice (the control)', async () => {
      const spec = bankSpec('postgres', 'restate');
      try {
        const { results, killed, stderr, entries } = await run(spec, 1, ['t0/debit'], false);
        expect(killed, stderr).toEqual(['t0/debit']);
        expect(unexpected(stderr)).toEqual([]);
        expect(applications(entries).get(`${results[0]!.invocationId}/debit`), `ledger: ${JSON.stringify(entries)}`).toBe(2);
      } finally {
        await destroyBank(spec);
      }
    }, 120_000);
  });
});
