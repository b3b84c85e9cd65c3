/**
 * PGlite (PostgreSQL in WebAssembly, in this process): the store through the store conformance
 * suite, with the races replaced by what one connection gives (concurrent calls serialise, none is
 * lost), the options it refuses, the instance used inside a business function refused instead of
 * hanging, and the outbox and idempotency tables on it. One instance for the whole file (it boots
 * in seconds).
 */
import { randomUUID } from 'node:crypto';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgliteStore } from '../../adapters/stores/pglite.js';
import { ensureIdempotencySchema, idempotencyGuard } from '../../src/idempotency/index.js';
import { createOutbox, createRelay, type OutboxDelivery } from '../../src/messaging/outbox/index.js';
import { Barrier, BarrierConfigError, BarrierTransactionAborted } from '../../src/index.js';
import { describeConformance, type Harness } from '../barrier/conformance.js';
import { pgliteHarness } from './pglite-harness.js';

const TABLE = 'dtm_barrier.barrier';
const pg = new PGlite();
let h: Harness<Transaction>;
const record = (tx: Transaction, gid: string, note: string) => h.record(tx, gid, note);
const notes = (gid: string) => h.notes(gid);
const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });

beforeAll(async () => {
  h = await pgliteHarness(pg);
}, 60_000);
afterAll(() => pg.close());

// The file's one instance stays open for the tests below.
describeConformance('pglite', async () => ({ ...h, close: async () => {} }));

describe('pglite store', () => {
  it('serialises concurrent calls on its one connection and loses none', async () => {
    const store = pgliteStore(pg);
    const gids = Array.from({ length: 20 }, () => `gid-${randomUUID()}`);
    let inside = 0;
    let most = 0;
    const results = await Promise.all(
      [...gids, ...gids].map((gid) =>
        action(gid).call(store, async (tx) => {
          most = Math.max(most, ++inside);
          await new Promise((resolve) => setTimeout(resolve, 1));
          await record(tx, gid, 'action');
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(results.filter((r) => r.outcome === 'applied')).toHaveLength(20);
    expect(results.filter((r) => r.outcome === 'duplicate')).toHaveLength(20);
    for (const gid of gids) expect(await notes(gid)).toEqual(['action']);
  });

  it('refuses transactionTimeout, which nothing could enforce on one connection, when the store is made', () => {
    const error = (() => {
      try {
        pgliteStore(pg, { transactionTimeout: 1000 } as never);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(BarrierConfigError);
    expect(error).toMatchObject({ code: 'ERR_TXBARRIER_OPTION', message: expect.stringContaining('transactionTimeout') });
    expect(() => pgliteStore({} as never)).toThrow(BarrierConfigError);
    // lockTimeout is accepted (the same options as the PostgreSQL stores); nothing ever waits for a lock.
    expect(() => pgliteStore(pg, { lockTimeout: 500, transactionTimeout: false })).not.toThrow();
  });

  it('refuses the instance itself inside a business function, instead of waiting for ever, and rolls back', async () => {
    const store = pgliteStore(pg);
    for (const misuse of [
      () => pg.query('SELECT 1'),
      () => pg.exec('SELECT 1'),
      () => pg.sql`SELECT 1`,
      () => pg.transaction(async () => undefined),
      () => action(`gid-${randomUUID()}`).call(store, async () => undefined),
    ]) {
      const gid = `gid-${randomUUID()}`;
      const error = await action(gid)
        .call(store, async (tx) => {
          await record(tx, gid, 'action');
          await misuse();
        })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BarrierConfigError);
      expect(error).toMatchObject({ code: 'ERR_TXBARRIER_PGLITE_INSTANCE' });
      expect(await notes(gid)).toEqual([]);
      expect((await pg.query(`SELECT 1 FROM ${TABLE} WHERE gid = $1`, [gid])).rows).toEqual([]);
    }
    // Outside a barrier transaction the instance answers as before, even from a late continuation of one.
    let late: Promise<unknown> | undefined;
    await action(`gid-${randomUUID()}`).call(store, async () => {
      late = new Promise((resolve) => setTimeout(resolve, 5)).then(() => pg.query('SELECT 1 AS one'));
    });
    expect(await late).toMatchObject({ rows: [{ one: 1 }] });
  });

  it('answers BarrierTransactionAborted when the business function swallowed a failed statement or rolled back itself', async () => {
    const store = pgliteStore(pg);
    for (const spoil of [
      (tx: Transaction) => tx.query('SELECT 1/0').catch(() => undefined),
      (tx: Transaction) => tx.rollback(),
    ]) {
      const gid = `gid-${randomUUID()}`;
      const error = await action(gid)
        .call(store, async (tx) => {
          await record(tx, gid, 'action');
          await spoil(tx);
        })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BarrierTransactionAborted);
      expect(await notes(gid)).toEqual([]);
      // The connection is usable afterwards: the retry applies.
      expect(await action(gid).call(store, (tx) => record(tx, gid, 'action'))).toEqual({ outcome: 'applied', value: undefined });
    }
  });

  it('runs each barrier transaction at the isolation level asked for', async () => {
    const store = pgliteStore(pg, { isolationLevel: 'serializable' });
    const levels = await store.transaction((connection) => connection.select('SHOW transaction_isolation', []));
    expect(levels).toEqual([{ transaction_isolation: 'serializable' }]);
  });

  it('keeps an outbox: a message committed with the work is published, one rolled back is not', async () => {
    const outbox = createOutbox(pgliteStore(pg), { table: 'pglite_outbox' });
    await outbox.ensureSchema();
    const kept = `gid-${randomUUID()}`;
    const lost = `gid-${randomUUID()}`;
    let id = '';
    await action(kept).call(outbox.store, async (tx) => {
      id = await outbox.enqueue(tx, { topic: 'payments', payload: { gid: kept } });
    });
    const boom = new Error('boom');
    await expect(
      action(lost).call(outbox.store, async (tx) => {
        await outbox.enqueue(tx, { topic: 'payments', payload: { gid: lost } });
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await outbox.pending()).map((entry) => entry.id)).toEqual([id]);
    const published: OutboxDelivery[] = [];
    const relay = createRelay(outbox, { publisher: { publish: async (message) => void published.push(message) } });
    expect(await relay.runOnce()).toBe(1);
    await relay.stop();
    expect(published.map((message) => [message.id, JSON.parse(message.payload.toString())])).toEqual([[id, { gid: kept }]]);
    expect(await outbox.counts()).toMatchObject({ pending: 0, sent: 1, parked: 0 });
  });

  it('keeps idempotency keys: a repeat replays the stored response and the work runs once', async () => {
    const store = pgliteStore(pg);
    await ensureIdempotencySchema(store, { table: 'pglite_idem' });
    const guard = idempotencyGuard<Transaction, unknown>(store, { scope: 'global', table: 'pglite_idem' });
    const gid = `gid-${randomUUID()}`;
    const request = { method: 'POST', target: '/pay', key: `"${randomUUID()}"`, body: '{"amount":1}' };
    const handler = async (tx: Transaction) => {
      await record(tx, gid, 'paid');
      return { status: 201, body: 'paid' };
    };
    const first = await guard.respond(request, {}, handler);
    const again = await guard.respond(request, {}, handler);
    for (const [answer, outcome] of [
      [first, 'executed'],
      [again, 'replayed'],
    ] as const) {
      expect(answer).toMatchObject({ status: 201, outcome });
      expect(Buffer.from(answer.body).toString()).toBe('paid');
    }
    expect(await notes(gid)).toEqual(['paid']);
  });
});
