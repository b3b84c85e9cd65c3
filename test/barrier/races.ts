/**
 * Racing requests on a real server, run unchanged against each engine: one request holds its
 * transaction open, the other is seen waiting on its lock (not guessed with a sleep), then the
 * first ends. An engine's race file supplies a `RaceHarness`, and keeps its engine-only races.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { IsolationLevel } from '../../src/transaction/isolation.js';
import { Barrier, type BarrierResult, BarrierOngoing, type BarrierStore, BarrierTimeout, type StoreOptions } from '../../src/index.js';
import { type Held, HeldRollback, holdOpen } from '../support/server-harness.js';

export type SagaOp = 'action' | 'compensate';

export interface RaceHarness<Tx> {
  store(isolationLevel?: IsolationLevel, options?: StoreOptions): BarrierStore<Tx>;
  /** Inserts one business row inside the barrier's transaction. */
  record(tx: Tx, gid: string, note: string): Promise<unknown>;
  /** Resolves once another request is seen waiting on the lock `holder` holds on `gid`'s rows. */
  waitingBehind(holder: Held<Tx>, gid: string): Promise<void>;
  /** Committed business rows of one gid. */
  notes(gid: string): Promise<string[]>;
}

export interface RaceLevel {
  label: string;
  isolationLevel?: IsolationLevel;
  /**
   * The error the waiter gets instead of waiting out a row committed after its snapshot
   * (PostgreSQL REPEATABLE READ: 40001); it must surface as BarrierOngoing, and the retry decides.
   */
  snapshotConflict?: Record<string, unknown>;
}

/** One delivery of a saga op whose business work records the op. */
export function deliver<Tx>(h: RaceHarness<Tx>, store: BarrierStore<Tx>, gid: string, op: SagaOp): Promise<BarrierResult<SagaOp>> {
  return Barrier.from({ transType: 'saga', gid, branchId: '01', op }).call(store, async (tx) => {
    await h.record(tx, gid, op);
    return op;
  });
}

export function describeRaces<Tx>(levels: RaceLevel[], harness: () => RaceHarness<Tx>): void {
  describe.each(levels)('at $label', ({ isolationLevel, snapshotConflict }) => {
    /** `held` runs in a transaction kept open until told; `waiting` starts once it holds its rows, and is seen blocked. */
    async function race(heldOp: SagaOp, waitingOp: SagaOp) {
      const h = harness();
      const gid = randomUUID();
      const holder = holdOpen(h.store(isolationLevel));
      const held = deliver(h, holder.store, gid, heldOp);
      await holder.entered;
      const waiting = deliver(h, h.store(isolationLevel), gid, waitingOp);
      await h.waitingBehind(holder, gid);
      return { h, gid, holder, held, waiting };
    }

    /** The waiter's answer once the holder committed: under a snapshot conflict, BarrierOngoing and then the retry's. */
    async function afterCommit(h: RaceHarness<Tx>, gid: string, op: SagaOp, waiting: Promise<BarrierResult<SagaOp>>) {
      if (!snapshotConflict) return waiting;
      const error = await waiting.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toMatchObject(snapshotConflict);
      return deliver(h, h.store(isolationLevel), gid, op);
    }

    it('compensate waits for the held action, then sees it and compensates it', async () => {
      const { h, gid, holder, held, waiting } = await race('action', 'compensate');
      holder.commit();
      const compensated = afterCommit(h, gid, 'compensate', waiting);
      expect(await held).toEqual({ outcome: 'applied', value: 'action' });
      expect(await compensated).toEqual({ outcome: 'applied', value: 'compensate' });
      expect(await h.notes(gid)).toEqual(['action', 'compensate']);
    });

    it('compensate waits for the held action; the action rolls back and the compensation is null', async () => {
      const { h, gid, holder, held, waiting } = await race('action', 'compensate');
      holder.rollback();
      await expect(held).rejects.toBeInstanceOf(HeldRollback);
      expect(await waiting).toEqual({ outcome: 'null-compensation' });
      expect(await h.notes(gid)).toEqual([]);
      // Its row now stops the action's retry.
      expect(await deliver(h, h.store(isolationLevel), gid, 'action')).toEqual({ outcome: 'dangling' });
    });

    it('the compensation commits first; the action waiting on it dangles', async () => {
      const { h, gid, holder, held, waiting } = await race('compensate', 'action');
      holder.commit();
      const late = afterCommit(h, gid, 'action', waiting);
      expect(await held).toEqual({ outcome: 'null-compensation' });
      expect(await late).toEqual({ outcome: 'dangling' });
      expect(await h.notes(gid)).toEqual([]);
    });

    it('two identical requests at once: one applied, one duplicate', async () => {
      const { h, gid, holder, held, waiting } = await race('action', 'action');
      holder.commit();
      const repeated = afterCommit(h, gid, 'action', waiting);
      expect(await held).toEqual({ outcome: 'applied', value: 'action' });
      expect(await repeated).toEqual({ outcome: 'duplicate' });
      expect(await h.notes(gid)).toEqual(['action']);
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Lock waits and business functions end by themselves, by default and as configured. */
export function describeBoundedWaits<Tx>(harness: () => RaceHarness<Tx>, { lockTimeout }: { lockTimeout: number }): void {
  describe('bounded waits', () => {
    async function heldAction(h: RaceHarness<Tx>, gid: string) {
      const holder = holdOpen(h.store());
      const held = deliver(h, holder.store, gid, 'action');
      await holder.entered;
      return { holder, held };
    }

    it.each([
      ['as configured', { lockTimeout }, lockTimeout],
      ['by default (2 s)', {}, 2000],
    ])('a compensation waiting on a held action answers BarrierOngoing %s, and its retry compensates', async (_, options, bound) => {
      const h = harness();
      const gid = randomUUID();
      const { holder, held } = await heldAction(h, gid);
      const store = h.store(undefined, options);
      const started = Date.now();
      const waiting = deliver(h, store, gid, 'compensate').catch((error: unknown) => error);
      // Unbounded, it would still be waiting (and pinning a pooled connection) when the holder ends.
      const answer = await Promise.race([waiting, sleep(bound + 4000).then(() => 'still waiting')]);
      expect(answer).toBeInstanceOf(BarrierOngoing);
      expect(Date.now() - started).toBeGreaterThanOrEqual(bound - 50);
      holder.commit();
      expect((await held).outcome).toBe('applied');
      expect((await deliver(h, store, gid, 'compensate')).outcome).toBe('applied');
      expect(await h.notes(gid)).toEqual(['action', 'compensate']);
    });

    it('reports a timed-out function that fails later as a warning naming its error', async () => {
      const h = harness();
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(warning.message);
      process.on('warning', onWarning);
      try {
        let fail!: () => void;
        const late = Barrier.from({ transType: 'saga', gid: randomUUID(), branchId: '01', op: 'action' }).call(
          h.store(undefined, { transactionTimeout: 200 }),
          () => new Promise<void>((_, reject) => (fail = () => reject(new Error('the late business failure')))),
        );
        await expect(late).rejects.toBeInstanceOf(BarrierTimeout);
        fail();
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(warnings.some((w) => w.includes('the late business failure'))).toBe(true);
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('rolls back a business function that never settles, closing its connection, so the retry applies at once', async () => {
      const h = harness();
      const gid = randomUUID();
      const store = h.store(undefined, { transactionTimeout: 300 });
      const hung = Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' }).call(store, async (tx) => {
        await h.record(tx, gid, 'hung');
        await new Promise(() => {});
      });
      const error = await hung.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BarrierTimeout);
      expect(error).toMatchObject({ code: 'ERR_TXBARRIER_TIMEOUT' });
      // Nothing of it committed, and its row lock is gone: no wait, no ONGOING.
      expect(await deliver(h, h.store(), gid, 'action')).toEqual({ outcome: 'applied', value: 'action' });
      expect(await h.notes(gid)).toEqual(['action']);
    });
  });
}
