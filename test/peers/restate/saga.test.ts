/**
 * A saga whose step is still running when its invocation is cancelled, on PostgreSQL and MariaDB.
 * The handler (`restateSaga`) compensates every step it started, the running one included:
 * - the step is late before its barrier (a pause, a slow network): the compensation finds nothing
 *   to undo (`null-compensation`) and leaves the row that turns the late step away (`dangling`);
 * - the step holds its transaction (rows written, not committed): the compensation waits for that
 *   transaction on the barrier row's lock instead of overtaking it, then undoes the committed step.
 * Either way the compensation and the late commit never both take effect unmatched, and money is
 * conserved. The control runs the first case without the barrier: both apply.
 *
 * The service runs in this process (an HTTP/2 server over the SDK's endpoint handler), so the test
 * can hold the debit step at either point while it cancels the invocation through the admin API.
 */
import { createServer, type Http2Server, type ServerHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../../servers/index.js';
import { restateAdmin } from '../../../servers/restate.js';
import type { OutcomeEvent } from '../../../src/index.js';
import { deferred, type Deferred, waitUntil } from '../../support/server-harness.js';
import { type Bank, type BankEngine, bankSpec, type BankSpec, createBank, destroyBank, openBank } from '../bank.js';
import type { TransferInput, Where } from './services.js';

const context = inject('restate');
const OPENING = 1000;
const AMOUNT = 70;

// On Node < 22 outside CI the setup says why it skips; CI fails instead (setup.ts).
describe.skipIf(context.skipped !== undefined)('Restate saga test', () => {
  const { ingress } = context;
  const admin = restateAdmin(context.admin);
  /** Per transfer: its debit step has reached where the test holds it, and the release the test gives it. */
  const gates = new Map<string, { reached: Deferred<void>; release: Deferred<void> }>();
  const gate = (transfer: string) => {
    let g = gates.get(transfer);
    if (!g) gates.set(transfer, (g = { reached: deferred(), release: deferred() }));
    return g;
  };
  const sdkLog: string[] = [];
  const events: OutcomeEvent[] = [];
  const banks: { name: string; spec: BankSpec; bank: Bank }[] = [];
  let server: Http2Server;
  const sessions = new Set<ServerHttp2Session>();

  const serviceName = (engine: BankEngine, guarded: boolean) => `saga_${engine}_${guarded ? 'barrier' : 'control'}_${process.pid}`;

  beforeAll(async () => {
    // Imported here, not at the top: the SDK needs Node >= 22, and this file also loads on older ones to say it skips.
    const restate = await import('@restatedev/restate-sdk');
    const { bankService } = await import('./services.js');
    const services = [];
    for (const [engine, guarded] of [['postgres', true], ['mysql', true], ['postgres', false]] as const) {
      const spec = bankSpec(engine, 'restate');
      // Opening creates the tables; each test adds its own two accounts. A compensation waits for the held step longer than the default 2 s lock timeout on a loaded machine.
      const bank = await openBank(spec, { lockTimeout: 20_000, onOutcome: (event) => void events.push(event) });
      const name = serviceName(engine, guarded);
      banks.push({ name, spec, bank });
      services.push(
        bankService(name, bank, {
          guarded,
          debitGate: async (input, where) => {
            if (input.hold !== where) return;
            gate(input.id).reached.resolve();
            await gate(input.id).release.promise;
          },
        }),
      );
    }
    const handler = restate.createEndpointHandler({ services, logger: (meta, message, ...rest) => void sdkLog.push(`${meta.level} ${[message, ...rest].map(String).join(' ')}`) });
    server = createServer(handler);
    // Restate keeps its HTTP/2 connections open: they are closed with the server.
    server.on('session', (session) => sessions.add(session.once('close', () => sessions.delete(session))));
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await admin.register(`http://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => server?.close(resolve));
    for (const { spec, bank } of banks) {
      await bank.close();
      await destroyBank(spec);
    }
  });

  let accountSeq = 0;
  /**
   * Starts a saga of `alice-<n>` paying `bob-<n>` whose debit step is held at `where`, cancels its
   * invocation there, lets the step go on once `released` says so, and waits for the invocation's
   * end. Returns what the bank and the barrier saw of it.
   */
  async function cancelledSaga(engine: BankEngine, guarded: boolean, where: Where, released: (bank: Bank, invocationId: string) => Promise<void>) {
    const { name, spec, bank } = banks.find((b) => b.name === serviceName(engine, guarded))!;
    const n = ++accountSeq;
    const [from, to] = [`alice-${n}`, `bob-${n}`];
    await createBank(spec, { [from]: OPENING, [to]: OPENING });
    const input: TransferInput = { id: `saga-${n}`, from, to, amount: AMOUNT, hold: where };
    const sent = await fetch(`${ingress}/${name}/saga/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
    const { invocationId } = (await sent.json()) as { invocationId: string };
    await gate(input.id).reached.promise;
    await admin.cancel(invocationId);
    await released(bank, invocationId);
    gate(input.id).release.resolve();
    const end = await fetch(`${ingress}/restate/invocation/${invocationId}/attach`);
    const ended = { status: end.status, body: await end.text() };
    const mine = () => events.filter((e) => e.gid === invocationId);
    // The late step settles after the invocation ended: wait for its outcome too.
    if (guarded) await waitUntil(`the late debit of ${invocationId} settled`, async () => mine().some((e) => e.op === 'action' && e.outcome !== 'ongoing'), { timeoutMs: 30_000 });
    else await waitUntil(`the late debit of ${invocationId} committed`, async () => (await bank.entries()).filter((e) => e.gid === invocationId).length === 2, { timeoutMs: 30_000 });
    const balances = await bank.balances();
    return {
      invocationId,
      ended,
      settled: mine().filter((e) => e.outcome !== 'ongoing').map((e) => [e.branchId, e.op, e.outcome]).sort(),
      entries: (await bank.entries()).filter((e) => e.gid === invocationId).map((e) => [e.step, e.op, e.delta]),
      balances: { [from]: balances[from], [to]: balances[to] },
      opening: { [from]: OPENING, [to]: OPENING },
    };
  }

  describe.each(['postgres', 'mysql'] as const)('Restate saga cancelled while its step runs (%s)', (engine) => {
    it('late before its barrier: null-compensation, then the late step is dangling; nothing applies', async () => {
      const r = await cancelledSaga(engine, true, 'before-barrier', (bank, id) =>
        waitUntil(`the compensation of ${id} committed`, async () => events.some((e) => e.gid === id && e.op === 'compensate' && e.outcome !== 'ongoing')),
      );
      const at = `invocation ${r.invocationId}, ended ${r.ended.status} ${r.ended.body}`;
      expect(r.ended.status, at).not.toBe(200);
      expect(r.settled, at).toEqual([
        ['debit/0', 'action', 'dangling'],
        ['debit/0', 'compensate', 'null-compensation'],
      ]);
      expect(r.entries, at).toEqual([]);
      expect(r.balances, at).toEqual(r.opening);
    });

    it('holding its transaction: the compensation waits on the barrier row, then undoes the committed step', async () => {
      const r = await cancelledSaga(engine, true, 'holding-transaction', (bank, id) =>
        // The compensation is blocked on the step's uncommitted barrier row before the step commits.
        waitUntil(`the compensation of ${id} waits for the step's lock`, async () => (await bank.lockWaits()) >= 1, { timeoutMs: 15_000, intervalMs: 150 }),
      );
      const at = `invocation ${r.invocationId}, ended ${r.ended.status} ${r.ended.body}`;
      expect(r.ended.status, at).not.toBe(200);
      expect(r.settled, at).toEqual([
        ['debit/0', 'action', 'applied'],
        ['debit/0', 'compensate', 'applied'],
      ]);
      expect(r.entries, at).toEqual([
        ['debit', 'action', -AMOUNT],
        ['debit', 'compensate', AMOUNT],
      ]);
      expect(r.balances, at).toEqual(r.opening);
    });
  });

  describe('Restate saga without the barrier (the control)', () => {
    it('late before its step: the compensation and the late step both apply', async () => {
      const r = await cancelledSaga('postgres', false, 'before-barrier', (bank, id) =>
        waitUntil(`the compensation of ${id} committed`, async () => (await bank.entries()).some((e) => e.gid === id && e.op === 'compensate')),
      );
      expect(r.entries, `invocation ${r.invocationId}`).toEqual([
        ['debit', 'compensate', AMOUNT],
        ['debit', 'action', -AMOUNT],
      ]);
    });
  });

  describe('the SDK', () => {
    it('warned only that the endpoint checks no signatures, and once of each cancellation (5 above)', () => {
      const warnings = sdkLog.filter((line) => /^(warn|error) /.test(line));
      const unsigned = 'warn Accepting requests without validating request signatures; handler access must be restricted';
      const cancelled = 'warn Error when processing a Restate context operation.\n CancelledError: Cancelled';
      expect(warnings.filter((line) => line !== unsigned && line !== cancelled)).toEqual([]);
      expect(warnings.filter((line) => line === cancelled)).toHaveLength(5);
    });
  });
});
