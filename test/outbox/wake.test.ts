/**
 * How a commit that enqueued wakes the relays (src/messaging/outbox/wake.ts): no NOTIFY inside the
 * business transaction where the outbox sees the commit, one coalesced NOTIFY after it that relays
 * of earlier versions still hear, and relays of the same outbox in this process woken directly.
 */
import { randomUUID } from 'node:crypto';
import knex from 'knex';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { knexExecutor } from '../../adapters/orm/knex.js';
import { postgresExecutor } from '../../adapters/stores/postgres.js';
import { postgresListener } from '../../adapters/stores/postgres-listener.js';
import type { BarrierStore } from '../../src/index.js';
import { createOutbox, createRelay, type OutboxPublisher } from '../../src/messaging/outbox/index.js';
import { coalesced } from '../../src/messaging/outbox/wake.js';
import { ENGINES, type EngineHarness, openEngine } from './harness.js';
import { waitUntil } from '../support/server-harness.js';
import { POSTGRES_URL } from '../../servers/index.js';

/** Statements per transaction of `store`, in the order the transactions began. */
function recording(store: BarrierStore<unknown>) {
  const transactions: string[][] = [];
  const recorded: BarrierStore<unknown> = {
    ...store,
    transaction: (work) =>
      store.transaction((connection) => {
        const log: string[] = [];
        transactions.push(log);
        return work({
          ...connection,
          execute: (sql, params) => (log.push(sql), connection.execute(sql, params)),
          select: (sql, params) => (log.push(sql), connection.select(sql, params)),
          run: (sql, params) => (log.push(sql), connection.run(sql, params)),
        });
      }),
  };
  return { store: recorded, transactions };
}

/** Publishes into an array. */
function memoryPublisher(): OutboxPublisher & { ids: string[] } {
  const ids: string[] = [];
  return { ids, publish: async (message) => void ids.push(message.id) };
}

describe('coalesced wake-ups', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends one at once, folds every call meanwhile into one more after it, and never more than one per interval', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const pending: (() => void)[] = [];
    const send = vi.fn(() => new Promise<void>((resolve) => pending.push(resolve)));
    const request = coalesced(send, 20);
    for (let i = 0; i < 100; i++) request();
    expect(send).toHaveBeenCalledTimes(1);
    pending.shift()!();
    await vi.advanceTimersByTimeAsync(0);
    // The first ended within the interval: the one more waits for it.
    expect(send).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 100; i++) request();
    await vi.advanceTimersByTimeAsync(20);
    expect(send).toHaveBeenCalledTimes(2);
    pending.shift()!();
    await vi.advanceTimersByTimeAsync(1000);
    expect(send).toHaveBeenCalledTimes(2);
    // After a quiet spell, at once again.
    request();
    expect(send).toHaveBeenCalledTimes(3);
  });

  it('goes on after a failed send', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const send = vi.fn().mockRejectedValueOnce(new Error('connection lost')).mockResolvedValue(undefined);
    const request = coalesced(send, 20);
    request();
    request();
    await vi.advanceTimersByTimeAsync(20);
    expect(send).toHaveBeenCalledTimes(2);
  });
});

for (const engine of ENGINES) {
  describe.skipIf(engine.skip)(`outbox wake-up on ${engine.name}`, () => {
    let db: EngineHarness;
    beforeAll(async () => {
      db = await openEngine(engine.name);
    });
    afterAll(async () => {
      await db?.close();
    });

    it('wakes a relay of the same outbox in this process at commit, without LISTEN and long before its poll', async () => {
      const relayStore = recording(db.outbox.store);
      const publisher = memoryPublisher();
      const relay = createRelay(db.outbox, { publisher, store: relayStore.store, pollInterval: '1h' });
      relay.start();
      // Its first round (at start) is over: from now on only a wake-up makes it claim again.
      await waitUntil('the first round claimed nothing', async () => relayStore.transactions.length >= 1 && (await db.outbox.pending()).length === 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const id = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'wake', payload: 'now' }));
      await waitUntil('it was published', async () => publisher.ids.includes(id), { timeoutMs: 5000 });
      await relay.stop();
    });
  });
}

const postgres = ENGINES.find((e) => e.name === 'postgres')!;

describe.skipIf(postgres.skip)('outbox wake-up on postgres: NOTIFY after the commit', () => {
  let db: EngineHarness;
  beforeAll(async () => {
    db = await openEngine('postgres');
  });
  afterAll(async () => {
    await db?.close();
  });

  it('sends no NOTIFY inside the business transaction, and one in a transaction of its own after the commit', async () => {
    const { store, transactions } = recording(db.store);
    const outbox = createOutbox(store, { table: db.outbox.table });
    await outbox.store.transaction(({ tx }) => outbox.enqueue(tx, { topic: 'wake', payload: 'x' }));
    const [business] = transactions;
    expect(business!.some((sql) => /notify/i.test(sql))).toBe(false);
    await waitUntil('the NOTIFY was sent', async () => transactions.length === 2);
    expect(transactions[1]).toEqual([expect.stringMatching(/^SELECT pg_notify\(\$1, ''\)/)]);
  });

  it('sends none for a transaction that rolled back, nor with notify: false', async () => {
    const { store, transactions } = recording(db.store);
    const outbox = createOutbox(store, { table: db.outbox.table });
    await expect(
      outbox.store.transaction(async ({ tx }) => {
        await outbox.enqueue(tx, { topic: 'wake', payload: 'x' });
        throw new Error('business failure');
      }),
    ).rejects.toThrow('business failure');
    const quiet = createOutbox(store, { table: db.outbox.table, notify: false });
    await quiet.store.transaction(({ tx }) => quiet.enqueue(tx, { topic: 'wake', payload: 'x' }));
    // Another commit that does notify, to know the wake-ups above would have been sent by now.
    await outbox.store.transaction(({ tx }) => outbox.enqueue(tx, { topic: 'wake', payload: 'x' }));
    await waitUntil('the last NOTIFY was sent', async () => transactions.length === 4);
    expect(transactions.map((statements) => statements.some((sql) => /notify/i.test(sql)))).toEqual([false, false, false, true]);
  });

  it('wakes a listener of the previous version: LISTEN on the channel, an empty payload', async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const heard: { channel: string; payload: string | undefined }[] = [];
      client.on('notification', (message) => heard.push({ channel: message.channel, payload: message.payload }));
      await client.query(`LISTEN "${db.outbox.channel}"`);
      await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'wake', payload: 'x' }));
      await waitUntil('the listener heard it', async () => heard.length > 0);
      expect(heard[0]).toEqual({ channel: db.outbox.channel, payload: '' });
    } finally {
      await client.end();
    }
  });

  it('wakes a relay in another process (another outbox object) through postgresListener, long before its poll', async () => {
    const elsewhere = createOutbox(db.store, { table: db.outbox.table });
    const publisher = memoryPublisher();
    const relay = createRelay(elsewhere, { publisher, pollInterval: '1h', listen: postgresListener(db.pool as never) });
    relay.start();
    await waitUntil('it listens', async () => (await db.query('SELECT 1 FROM pg_stat_activity WHERE query LIKE $1', [`LISTEN "${db.outbox.channel}"`])).length === 1);
    await waitUntil('its first round is over', async () => (await db.outbox.pending()).length === 0);
    const id = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'wake', payload: 'x' }));
    await waitUntil('it was published', async () => publisher.ids.includes(id), { timeoutMs: 5000 });
    await relay.stop();
  });

  it('notifies after the commit of a knex transaction, and inside the transaction of an executor that cannot tell its end', async () => {
    const { store, transactions } = recording(db.store);
    const outbox = createOutbox(store, { table: db.outbox.table });
    const k = knex({ client: 'pg', connection: POSTGRES_URL, pool: { min: 0, max: 1 } });
    const inside: string[] = [];
    try {
      await k.transaction(async (trx) => {
        const executor = knexExecutor(trx);
        await outbox.enqueue({ ...executor, execute: (sql: string, params: unknown[]) => (inside.push(sql), executor.execute(sql, params)) }, { topic: 'wake', payload: 'x' });
      });
      expect(inside.some((sql) => /notify/i.test(sql))).toBe(false);
      await waitUntil('the NOTIFY was sent', async () => transactions.length === 1);
      expect(transactions[0]).toEqual([expect.stringMatching(/^SELECT pg_notify/)]);
    } finally {
      await k.destroy();
    }
    const client = await (db.pool as pg.Pool).connect();
    try {
      await client.query('BEGIN');
      const executor = postgresExecutor(client);
      await outbox.enqueue({ ...executor, execute: (sql: string, params: unknown[]) => (inside.push(sql), executor.execute(sql, params)) }, { topic: 'wake', payload: randomUUID() });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(inside.at(-1)).toMatch(/pg_notify/);
  });
});
