/**
 * The behaviour every store must have, run unchanged against each engine. An engine's test file
 * supplies a `Harness`: its store plus a way to write and read a business row in its own SQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Barrier,
  BarrierConfigError,
  BarrierDuplicateMessage,
  BarrierFailure,
  BarrierInputError,
  type BarrierStore,
  type OutcomeEvent,
  type StoreOptions,
} from '../../src/index.js';

export interface BarrierRowRead {
  gid: string;
  branch_id: string;
  op: string;
  barrier_id: string;
  reason: string;
  trans_type: string;
  create_time: unknown;
}

export interface Harness<Tx> {
  store: BarrierStore<Tx>;
  /** A store on the same database with other options (a table name, hooks). */
  makeStore(options: StoreOptions): BarrierStore<Tx>;
  /** Inserts one business row inside the barrier's transaction. */
  record(tx: Tx, gid: string, note: string): Promise<void>;
  /** Committed business rows of one gid, in insertion order. */
  notes(gid: string): Promise<string[]>;
  /** Committed barrier rows of one gid. */
  barrierRows(gid: string): Promise<BarrierRowRead[]>;
  close(): Promise<void>;
}

type Fields = Parameters<typeof Barrier.from>[0];

export function describeConformance<Tx>(engine: string, setup: () => Promise<Harness<Tx>>): void {
  describe(`conformance: ${engine}`, () => {
    let h: Harness<Tx>;
    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.close();
    });

    const gidOf = () => `gid-${randomUUID()}`;
    const barrier = (gid: string, transType: string, op: string, branchId = '01') =>
      Barrier.from({ transType, gid, branchId, op } as Fields);
    /** One delivery: a fresh Barrier (as a new request makes), business row noted as `op`. */
    const deliver = (gid: string, transType: string, op: string, branchId = '01') =>
      barrier(gid, transType, op, branchId).call(h.store, async (tx) => {
        await h.record(tx, gid, op);
        return op;
      });

    it('applies a forward op once and reports the repeat as a duplicate', async () => {
      const gid = gidOf();
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'applied', value: 'action' });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'duplicate' });
      expect(await h.notes(gid)).toEqual(['action']);
    });

    it('compensates an action that committed, once', async () => {
      const gid = gidOf();
      await deliver(gid, 'saga', 'action');
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'applied', value: 'compensate' });
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'duplicate' });
      expect(await h.notes(gid)).toEqual(['action', 'compensate']);
    });

    it('turns a compensation without its action into a null compensation, and blocks the late action', async () => {
      const gid = gidOf();
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'null-compensation' });
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'duplicate' });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'dangling' });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'dangling' });
      expect(await h.notes(gid)).toEqual([]);
      const rows = await h.barrierRows(gid);
      expect(rows.map((r) => `${r.op}:${r.reason}`).sort()).toEqual(['action:compensate', 'compensate:compensate']);
    });

    it.each([
      ['tcc', 'try', 'cancel'],
      ['workflow', 'action', 'rollback'],
      ['xa', 'action', 'rollback'],
    ])('%s: %s then %s applies both; %s first makes the late %s dangle', async (transType, forward, compensation) => {
      const ordered = gidOf();
      expect((await deliver(ordered, transType, forward)).outcome).toBe('applied');
      expect((await deliver(ordered, transType, compensation)).outcome).toBe('applied');
      expect(await h.notes(ordered)).toEqual([forward, compensation]);

      const reversed = gidOf();
      expect((await deliver(reversed, transType, compensation)).outcome).toBe('null-compensation');
      expect((await deliver(reversed, transType, forward)).outcome).toBe('dangling');
      expect(await h.notes(reversed)).toEqual([]);
    });

    it('tcc confirm and xa commit apply once, as forward ops', async () => {
      const gid = gidOf();
      await deliver(gid, 'tcc', 'try');
      expect((await deliver(gid, 'tcc', 'confirm')).outcome).toBe('applied');
      expect((await deliver(gid, 'tcc', 'confirm')).outcome).toBe('duplicate');
      const xa = gidOf();
      expect((await deliver(xa, 'xa', 'commit')).outcome).toBe('applied');
      expect((await deliver(xa, 'xa', 'commit')).outcome).toBe('duplicate');
      expect(await h.notes(gid)).toEqual(['try', 'confirm']);
    });

    it('keeps branches apart: the same op on another branch or gid applies', async () => {
      const gid = gidOf();
      expect((await deliver(gid, 'saga', 'action', '01')).outcome).toBe('applied');
      expect((await deliver(gid, 'saga', 'action', '02')).outcome).toBe('applied');
      expect((await deliver(gid, 'saga', 'compensate', '03')).outcome).toBe('null-compensation');
      expect((await deliver(gid, 'saga', 'compensate', '01')).outcome).toBe('applied');
      expect(await h.notes(gid)).toEqual(['action', 'action', 'compensate']);
    });

    it('rolls back business rows and barrier rows when fn throws, and rethrows the same error', async () => {
      const gid = gidOf();
      const boom = new Error('business broke');
      const failing = barrier(gid, 'saga', 'action').call(h.store, async (tx) => {
        await h.record(tx, gid, 'half-done');
        throw boom;
      });
      await expect(failing).rejects.toBe(boom);
      expect(await h.notes(gid)).toEqual([]);
      expect(await h.barrierRows(gid)).toEqual([]);
      // Nothing was left behind, so the coordinator's retry applies.
      expect((await deliver(gid, 'saga', 'action')).outcome).toBe('applied');
    });

    it('rethrows BarrierFailure unchanged and leaves nothing behind', async () => {
      const gid = gidOf();
      const failure = new BarrierFailure('insufficient funds');
      await expect(barrier(gid, 'saga', 'action').call(h.store, () => Promise.reject(failure))).rejects.toBe(failure);
      expect(await h.barrierRows(gid)).toEqual([]);
      // The saga then compensates: a null compensation, since the action never committed.
      expect((await deliver(gid, 'saga', 'compensate')).outcome).toBe('null-compensation');
    });

    it('rethrows a non-Error thrown value unchanged', async () => {
      const gid = gidOf();
      await expect(barrier(gid, 'saga', 'action').call(h.store, () => Promise.reject('plain string'))).rejects.toBe('plain string');
      expect(await h.barrierRows(gid)).toEqual([]);
    });

    it('numbers several calls of one handler 01, 02, … and a retry replays them as duplicates', async () => {
      const gid = gidOf();
      const handler = async () => {
        const b = barrier(gid, 'saga', 'action');
        const first = await b.call(h.store, (tx) => h.record(tx, gid, 'first'));
        const second = await b.call(h.store, (tx) => h.record(tx, gid, 'second'));
        return [first.outcome, second.outcome];
      };
      expect(await handler()).toEqual(['applied', 'applied']);
      expect(await handler()).toEqual(['duplicate', 'duplicate']);
      expect(await h.notes(gid)).toEqual(['first', 'second']);
      expect((await h.barrierRows(gid)).map((r) => r.barrier_id).sort()).toEqual(['01', '02']);
    });

    it('writes DTM-compatible rows with timestamps filled in', async () => {
      const gid = gidOf();
      await deliver(gid, 'tcc', 'cancel', '07');
      const rows = await h.barrierRows(gid);
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(row).toMatchObject({ trans_type: 'tcc', gid, branch_id: '07', barrier_id: '01', reason: 'cancel' });
        expect(row.create_time).not.toBeNull();
        expect(row.create_time).not.toBeUndefined();
      }
      expect(rows.map((r) => r.op).sort()).toEqual(['cancel', 'try']);
    });

    it('runs a 2-phase message once; a repeat throws; the check-back reads its outcome', async () => {
      const gid = gidOf();
      const message = () => Barrier.forMessage(gid);
      expect(await message().call(h.store, (tx) => h.record(tx, gid, 'msg'))).toEqual({ outcome: 'applied', value: undefined });
      const repeat = message().call(h.store, (tx) => h.record(tx, gid, 'again'));
      await expect(repeat).rejects.toBeInstanceOf(BarrierDuplicateMessage);
      await expect(repeat).rejects.toMatchObject({ committed: true });
      expect(await message().queryPrepared(h.store)).toBe('committed');
      expect(await h.notes(gid)).toEqual(['msg']);

      // A check-back for a message whose local transaction never ran marks it rolled back for good.
      const lost = gidOf();
      expect(await Barrier.forMessage(lost).queryPrepared(h.store)).toBe('rolledback');
      const late = Barrier.forMessage(lost).call(h.store, (tx) => h.record(tx, lost, 'late'));
      await expect(late).rejects.toMatchObject({ name: 'BarrierDuplicateMessage', committed: false });
      expect(await Barrier.forMessage(lost).queryPrepared(h.store)).toBe('rolledback');
      expect(await h.notes(lost)).toEqual([]);
    });

    it('gives one applied and one duplicate for two identical requests at once', async () => {
      const gid = gidOf();
      const outcomes = await Promise.all([deliver(gid, 'saga', 'action'), deliver(gid, 'saga', 'action')]);
      expect(outcomes.map((o) => o.outcome).sort()).toEqual(['applied', 'duplicate']);
      expect(await h.notes(gid)).toEqual(['action']);
    });

    it('keeps concurrent action and compensation consistent, whichever wins', async () => {
      for (let i = 0; i < 10; i++) {
        const gid = gidOf();
        const [action, compensation] = await Promise.all([deliver(gid, 'saga', 'action'), deliver(gid, 'saga', 'compensate')]);
        const notes = await h.notes(gid);
        if (action.outcome === 'applied') {
          expect(compensation.outcome).toBe('applied');
          expect(notes).toEqual(['action', 'compensate']);
        } else {
          expect(action.outcome).toBe('dangling');
          expect(compensation.outcome).toBe('null-compensation');
          expect(notes).toEqual([]);
        }
      }
    });

    it('refuses bad input with every bad field named, and writes nothing', async () => {
      const gid = gidOf();
      let error: unknown;
      try {
        Barrier.fromQuery({ gid: [gid, gid], trans_type: 'saga', branch_id: '', op: 'undo' });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BarrierInputError);
      expect((error as BarrierInputError).problems.map((p) => p.field)).toEqual(['gid', 'branch_id', 'op']);
      expect(await h.barrierRows(gid)).toEqual([]);
    });

    it('refuses a table name that is not an identifier when the store is made', () => {
      for (const table of ['barrier; drop table x', 'a.b.c', '1barrier', 'bar rier', '', 'x'.repeat(64), 'a."b"']) {
        expect(() => h.makeStore({ table }), table).toThrow(BarrierConfigError);
      }
    });

    it('creates its schema idempotently, under another table name too', async () => {
      const store = h.makeStore({ table: 'barrier_conformance_extra' });
      await store.ensureSchema();
      await store.ensureSchema();
      await h.store.ensureSchema();
      const gid = gidOf();
      const outcome = await barrier(gid, 'saga', 'action').call(store, () => 'done');
      expect(outcome).toEqual({ outcome: 'applied', value: 'done' });
      // The default store's table never saw it.
      expect(await h.barrierRows(gid)).toEqual([]);
    });

    /** Writes one barrier row as another client would, outside any barrier call. */
    const foreignRow = (gid: string, transType: string, op: string, reason: string) =>
      h.store.transaction((c) => c.execute(h.store.dialect.insertRows(h.store.table, 1), [transType, gid, '01', op, '01', reason]));

    it("decides from which rows went in: a repeat after DTM's Python client's lone rollback row is a duplicate", async () => {
      // dtmcli-py writes only the rollback row for a null workflow rollback (no origin action row).
      const gid = gidOf();
      await foreignRow(gid, 'workflow', 'rollback', 'rollback');
      expect(await deliver(gid, 'workflow', 'rollback')).toEqual({ outcome: 'duplicate' });
      expect(await h.notes(gid)).toEqual([]);
      // And the late action still cannot apply: the repeat wrote the missing origin row.
      expect((await deliver(gid, 'workflow', 'action')).outcome).toBe('dangling');
    });

    it('never runs a compensation twice when its origin row was pruned before its own', async () => {
      const gid = gidOf();
      await deliver(gid, 'saga', 'action');
      expect((await deliver(gid, 'saga', 'compensate')).outcome).toBe('applied');
      await h.store.transaction((c) =>
        c.execute(`DELETE FROM ${h.store.dialect.quoteTable(h.store.table)} WHERE gid = ${h.store.placeholder?.(1) ?? (h.store.dialect.name === 'postgres' ? '$1' : '?')} AND op = 'action'`, [gid]),
      );
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'duplicate' });
      expect(await h.notes(gid)).toEqual(['action', 'compensate']);
    });

    it('gives a failed call its barrier id back, so an in-process retry on one instance is the same step', async () => {
      const gid = gidOf();
      await deliver(gid, 'saga', 'action');
      const refund = barrier(gid, 'saga', 'compensate');
      await expect(refund.call(h.store, () => Promise.reject(new Error('transient')))).rejects.toThrow('transient');
      // As barrier 02 it would find no origin row and skip the real refund as a null compensation.
      expect(await refund.call(h.store, (tx) => h.record(tx, gid, 'refund'))).toMatchObject({ outcome: 'applied' });
      expect(await h.notes(gid)).toEqual(['action', 'refund']);
      expect((await h.barrierRows(gid)).map((r) => r.barrier_id)).toEqual(['01', '01']);
    });

    it('refuses a second call on one instance while the first is running', async () => {
      const gid = gidOf();
      const b = barrier(gid, 'saga', 'action');
      let release!: () => void;
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const first = b.call(h.store, () => new Promise<void>((resolve) => ((release = resolve), started())));
      await expect(b.call(h.store, () => 'second')).rejects.toMatchObject({ code: 'ERR_TXBARRIER_CALL_IN_PROGRESS' });
      // On a loaded machine the first call may not have reached its function yet.
      await running;
      release();
      expect((await first).outcome).toBe('applied');
    });

    it('names the missing table and the fix instead of the raw driver error', async () => {
      const store = h.makeStore({ table: 'barrier_never_created' });
      const error = await barrier(gidOf(), 'saga', 'action').call(store, () => 'never').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BarrierConfigError);
      expect(error).toMatchObject({ code: 'ERR_TXBARRIER_NO_TABLE' });
      expect(String((error as Error).message)).toContain('barrier_never_created');
      expect(String((error as Error).message)).toContain('--table barrier_never_created');
    });

    it('reports every call to onOutcome with fields, outcome and duration', async () => {
      const events: OutcomeEvent[] = [];
      const store = h.makeStore({ table: h.store.table, onOutcome: (e) => events.push(e) });
      const gid = gidOf();
      const failure = new BarrierFailure('no');
      await barrier(gid, 'saga', 'compensate').call(store, () => 'unused');
      await barrier(gid, 'saga', 'action').call(store, () => 'unused');
      await expect(barrier(gid, 'saga', 'action', '02').call(store, () => Promise.reject(failure))).rejects.toBe(failure);
      expect(events.map((e) => [e.op, e.branchId, e.barrierId, e.outcome, e.committed])).toEqual([
        ['compensate', '01', '01', 'null-compensation', true],
        ['action', '01', '01', 'dangling', true],
        ['action', '02', '01', 'failure', false],
      ]);
      expect(events[2]!.error).toBe(failure);
      expect(events.every((e) => e.gid === gid && e.transType === 'saga' && e.durationMs >= 0)).toBe(true);
    });
  });
}
