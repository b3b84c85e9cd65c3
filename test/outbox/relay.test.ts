/**
 * The relay's claiming, leases, shutdown, pruning and wake-ups, on each engine against the real
 * RabbitMQ; enqueue inside an ORM executor's transaction.
 */
import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import knex from 'knex';
import { amqpPublisher } from '../../adapters/brokers/amqp/publisher.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knexExecutor } from '../../adapters/orm/knex.js';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresListener } from '../../adapters/stores/postgres-listener.js';
import { Barrier } from '../../src/index.js';
import { createOutbox, createRelay, type OutboxPublisher, type RelayEvent } from '../../src/messaging/outbox/index.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { BROKERS, type BrokerHarness, ENGINES, type EngineHarness, openEngine } from './harness.js';
import { deferred, type MysqlPool, waitUntil } from '../support/server-harness.js';
import { AMQP_URL, freePort, POSTGRES_URL } from '../../servers/index.js';

const amqp = BROKERS.find((b) => b.name === 'amqp')!;

for (const engine of ENGINES) {
  describe.skipIf(engine.skip || amqp.skip)(`outbox relay on ${engine.name}`, () => {
    let db: EngineHarness;
    let mq: BrokerHarness;
    let topic: string;
    beforeAll(async () => {
      db = await openEngine(engine.name);
      mq = await amqp.open();
      topic = mq.topic('relay');
      await mq.accept(topic);
    });
    afterAll(async () => {
      await mq?.close();
      await db?.close();
    });

    const enqueueMany = async (count: number, key?: (i: number) => string | undefined) => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const k = key?.(i);
        ids.push(await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic, payload: `m${i}`, ...(k ? { key: k } : {}) })));
      }
      return ids;
    };
    const clear = () => db.query(`DELETE FROM ${db.outbox.table}`);
    const receivedIds = async (ids: string[]) => {
      const wanted = new Set(ids);
      return (await mq.received()).filter((m) => wanted.has(m.id)).map((m) => m.id);
    };

    it('two relays racing publish every message once', async () => {
      const ids = await enqueueMany(60);
      const relays = [0, 1].map(() => createRelay(db.outbox, { publisher: mq.publisher(), batchSize: 7, pollInterval: 20 }));
      for (const relay of relays) relay.start();
      await waitUntil('everything sent', async () => (await db.outbox.counts()).sent === 60);
      await Promise.all(relays.map((relay) => relay.stop()));
      await waitUntil('everything arrived', async () => (await receivedIds(ids)).length >= 60);
      const got = await receivedIds(ids);
      expect(got.length).toBe(60);
      expect(new Set(got).size).toBe(60);
      await clear();
    });

    // Engine-specific cases are defined only on their engine (not skipped elsewhere).
    if (engine.name !== 'sqlite') it('claims past rows another relay holds, without waiting for it', async () => {
      const ids = await enqueueMany(10);
      const held = deferred();
      const holding = deferred<unknown[]>();
      // Another relay's claim, stuck after locking the first five rows.
      const other = db.outbox.store.transaction(async (connection) => {
        holding.resolve(await connection.select(db.outbox.sql.claim(5), []));
        await held.promise;
      });
      const lockedRows = await holding.promise;
      expect(lockedRows.map((r) => (r as { id: string }).id)).toEqual(ids.slice(0, 5));
      const relay = createRelay(db.outbox, { publisher: mq.publisher(), batchSize: 10 });
      const started = Date.now();
      expect(await relay.runOnce()).toBe(5);
      expect(Date.now() - started).toBeLessThan(3000);
      held.resolve();
      await other;
      expect(await relay.runOnce()).toBe(5);
      await relay.stop();
      expect(new Set(await receivedIds(ids)).size).toBe(10);
      await clear();
    });

    if (engine.name === 'mysql') it('with a read-committed relay store, an enqueue does not wait for a claim in flight', async () => {
      await enqueueMany(3);
      const readCommitted = mysqlStore(db.pool as MysqlPool, { table: db.store.table, isolationLevel: 'read committed' });
      const held = deferred();
      const holding = deferred();
      const claim = readCommitted.transaction(async (connection) => {
        await connection.select(db.outbox.sql.claim(10), []);
        holding.resolve();
        await held.promise;
      });
      await holding.promise;
      // Under REPEATABLE READ this insert would wait for the claim's gap lock (innodb_lock_wait_timeout, 50 s).
      const started = Date.now();
      await enqueueMany(1);
      expect(Date.now() - started).toBeLessThan(2000);
      held.resolve();
      await claim;
      const relay = createRelay(db.outbox, { publisher: mq.publisher(), store: readCommitted });
      expect(await relay.runOnce()).toBe(4);
      await relay.stop();
      await clear();
    });

    it('publishes again what a relay claimed and never recorded, after its lease; parks what keeps getting lost', async () => {
      const [id] = await enqueueMany(1);
      // A relay that claims with a short lease and dies before publishing or recording anything.
      const claimAndDie = () =>
        db.outbox.store.transaction(async (connection) => {
          const rows = await connection.select(db.outbox.sql.claim(10), []);
          if (rows.length) await connection.execute(db.outbox.sql.lease(rows.length), [150, ...rows.map((r) => r.seq)]);
          return rows.length;
        });
      expect(await claimAndDie()).toBe(1);
      const relay = createRelay(db.outbox, { publisher: mq.publisher(), retry: { maxAttempts: 3 } });
      expect(await relay.runOnce()).toBe(0); // hidden by the dead relay's lease
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(await relay.runOnce()).toBe(1);
      await waitUntil('it arrived', async () => (await receivedIds([id!])).length === 1);

      // Lost by every relay that takes it: after maxAttempts claims it is parked instead of published again.
      const [lost] = await enqueueMany(1);
      const parked: string[] = [];
      const careful = createRelay(db.outbox, { publisher: mq.publisher(), retry: { maxAttempts: 2 }, onParked: (e) => parked.push(e.id) });
      for (let i = 0; i < 2; i++) {
        expect(await claimAndDie()).toBe(1);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(await careful.runOnce()).toBe(1);
      expect(parked).toEqual([lost]);
      expect((await db.outbox.parked())[0]).toMatchObject({ id: lost, attempts: 3 });
      expect(await receivedIds([lost!])).toEqual([]);
      await relay.stop();
      await careful.stop();
      await clear();
    });

    it("records a late publish against the message it claimed, never against a row number another message now has", async () => {
      // Relay 1 claims X and its publish hangs past the lease; relay 2 claims X, publishes it and
      // records it sent; a prune deletes X; Y is enqueued (SQLite gives it X's deleted seq); then
      // relay 1's publish returns. Y must stay pending: no broker ever saw it.
      const [x] = await enqueueMany(1);
      const entered = deferred();
      const gate = deferred();
      const real = mq.publisher();
      const hanging: OutboxPublisher = {
        publish: async (message) => {
          entered.resolve();
          await gate.promise;
          await real.publish(message);
        },
        close: () => real.close!(),
      };
      const first = createRelay(db.outbox, { publisher: hanging, lease: 100 });
      const late = first.runOnce();
      await entered.promise;
      await new Promise((resolve) => setTimeout(resolve, 200));
      const second = createRelay(db.outbox, { publisher: mq.publisher() });
      expect(await second.runOnce()).toBe(1);
      await second.stop();
      expect(await db.outbox.prune({ olderThan: 0 })).toBe(1);
      const [y] = await enqueueMany(1);
      const seqOf = async (id: string) => (await db.query(`SELECT seq FROM ${db.outbox.table} WHERE id = ?`.replace('?', engine.name === 'postgres' ? '$1' : '?'), [id]))[0]?.seq;
      if (engine.name === 'sqlite') expect(await seqOf(y!)).toBe(1); // X's row number, reused
      gate.resolve();
      expect(await late).toBe(1);
      await first.stop();
      expect((await db.outbox.pending()).map((m) => m.id)).toEqual([y]);
      await waitUntil('X arrived twice (at least once is the promise)', async () => (await receivedIds([x!])).length === 2);
      expect(await receivedIds([y!])).toEqual([]);
      await clear();
    });

    if (engine.name === 'sqlite') it('bounds a publish and stop() on a stalled connection: the publish is retried on a new connection, stop() returns at its timeout', async () => {
      const target = new URL(AMQP_URL);
      const proxy = await tcpProxy(Number(target.port || 5672), target.hostname);
      const proxied = new URL(AMQP_URL);
      proxied.port = String(proxy.port);
      const retries: RelayEvent[] = [];
      const errors: unknown[] = [];
      const publisher = amqpPublisher({ connect: () => amqplib.connect(proxied.href), timeout: 300 });
      const relay = createRelay(db.outbox, { publisher, onRetry: (e) => retries.push(e), onError: (e) => errors.push(e) });
      try {
        const [first] = await enqueueMany(1);
        expect(await relay.runOnce()).toBe(1);
        proxy.stall();
        const [second] = await enqueueMany(1);
        const started = Date.now();
        expect(await relay.runOnce()).toBe(1);
        expect(Date.now() - started).toBeLessThan(2000);
        expect(retries).toMatchObject([{ id: second, attempt: 1, retryInMs: 0 }]);
        expect(String(retries[0]!.error)).toMatch(/no confirm for message .* within 300 ms/);
        // The stalled connection was abandoned: the retry opens a new one and goes through.
        expect(await relay.runOnce()).toBe(1);
        expect(await db.outbox.counts()).toMatchObject({ pending: 0, sent: 2 });
        await waitUntil('both arrived', async () => (await receivedIds([first!, second!])).length === 2);

        proxy.stall();
        const stopping = Date.now();
        await relay.stop({ stopTimeout: '200ms' });
        expect(Date.now() - stopping).toBeLessThan(1000);
        expect(errors.map(String)).toEqual([expect.stringMatching(/not closed within 200 ms/)]);
      } finally {
        await proxy.close();
        await clear();
      }
    });

    if (engine.name === 'sqlite') it('with urls, moves to the next node when its node goes away, and skips a node that refuses', async () => {
      const target = new URL(AMQP_URL);
      const proxy = await tcpProxy(Number(target.port || 5672), target.hostname);
      const proxied = new URL(AMQP_URL);
      proxied.port = String(proxy.port);
      const retries: RelayEvent[] = [];
      const publisher = amqpPublisher({ connect: (url) => amqplib.connect(url), urls: [proxied.href, AMQP_URL], timeout: 2000 });
      const relay = createRelay(db.outbox, { publisher, onRetry: (e) => retries.push(e) });
      try {
        const [first] = await enqueueMany(1);
        expect(await relay.runOnce()).toBe(1);
        // The first node dies: its connections drop and it accepts no more.
        await proxy.close();
        const [second] = await enqueueMany(1);
        for (let round = 0; round < 3 && (await db.outbox.counts()).pending > 0; round++) await relay.runOnce();
        expect(await db.outbox.counts()).toMatchObject({ pending: 0, sent: 2 });
        // At most the publish that met the dropped connection was retried.
        expect(retries.length).toBeLessThanOrEqual(1);
        await waitUntil('both arrived', async () => (await receivedIds([first!, second!])).length === 2);
      } finally {
        await relay.stop();
        await proxy.close();
        await clear();
      }
      // A node that refuses is skipped; every node refusing fails the publish, saying so (the relay retries it).
      const refused = `amqp://127.0.0.1:${await freePort()}`;
      const skipping = amqpPublisher({ connect: (url) => amqplib.connect(url), urls: [refused, AMQP_URL] });
      const none = amqpPublisher({ connect: (url) => amqplib.connect(url), urls: [refused] });
      try {
        const delivery = { id: randomUUID(), topic: mq.topic(), key: null, headers: {}, payload: Buffer.from('{}'), attempt: 1 };
        await mq.accept(delivery.topic);
        await skipping.publish(delivery);
        await expect(none.publish(delivery)).rejects.toThrow(/none of the 1 nodes accepted a connection; the last said: .*ECONNREFUSED/);
      } finally {
        await skipping.close!();
        await none.close!();
      }
      expect(() => amqpPublisher({ connect: (url) => amqplib.connect(url), urls: [] })).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_OPTION' }));
    });

    if (engine.name === 'sqlite') it('publishes on a new channel after the broker refused one (a nack)', async () => {
      const admin = await amqplib.connect(AMQP_URL);
      const queue = `txb-outbox-full-${randomUUID()}`;
      let channels = 0;
      const publisher = amqpPublisher({
        connect: async (url) => {
          const connection = await amqplib.connect(url);
          const open = connection.createConfirmChannel.bind(connection);
          return Object.assign(connection, { createConfirmChannel: () => (channels++, open()) });
        },
        urls: [AMQP_URL],
      });
      const delivery = () => ({ id: randomUUID(), topic: queue, key: null, headers: {}, payload: Buffer.from('{}'), attempt: 1 });
      try {
        const channel = await admin.createChannel();
        // Full after one message: the next publish is nacked.
        await channel.assertQueue(queue, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
        await publisher.publish(delivery());
        await expect(publisher.publish(delivery())).rejects.toThrow(/message nacked/);
        expect(channels).toBe(1);
        await channel.purgeQueue(queue);
        await publisher.publish(delivery());
        expect(channels).toBe(2);
        await channel.deleteQueue(queue);
      } finally {
        await publisher.close!();
        await admin.close();
      }
    });

    it('stops gracefully: the round in flight is published and recorded, then nothing more is claimed', async () => {
      const [first] = await enqueueMany(1);
      const gate = deferred();
      const entered = deferred();
      const real = mq.publisher();
      const slow: OutboxPublisher = {
        publish: async (message) => {
          entered.resolve();
          await gate.promise;
          await real.publish(message);
        },
        close: () => real.close!(),
      };
      const relay = createRelay(db.outbox, { publisher: slow, pollInterval: 10 });
      relay.start();
      await entered.promise;
      let stopped = false;
      const stopping = relay.stop().then(() => (stopped = true));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(stopped).toBe(false);
      gate.resolve();
      await stopping;
      expect((await db.outbox.counts()).sent).toBe(1);
      expect(await receivedIds([first!])).toEqual([first]);
      await enqueueMany(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await db.outbox.counts()).pending).toBe(1);
      await clear();
    });

    if (engine.name === 'sqlite') it('logs each outcome at its level; a hook that throws is reported and the relay goes on', async () => {
      const lines: [string, string, Record<string, unknown>][] = [];
      const at = (level: string) => (object: unknown, message?: string) => void lines.push([level, message ?? '', object as Record<string, unknown>]);
      const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
      const [good] = await enqueueMany(1);
      const poison = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: mq.deadTopic(), payload: 'x' }));
      const relay = createRelay(db.outbox, {
        publisher: mq.publisher(),
        logger,
        pollInterval: 10,
        retry: { immediate: 1, maxAttempts: 2 },
        onParked: () => {
          throw new Error('hook broke');
        },
      });
      relay.start();
      await waitUntil('the hook failure was logged', async () => lines.some(([, message]) => message.includes('onParked hook threw')));
      const [next] = await enqueueMany(1);
      await waitUntil('the relay went on', async () => (await db.outbox.counts()).sent === 2);
      await relay.stop();
      const find = (message: string) => lines.find(([, m]) => m.includes(message))!;
      expect(find('published')).toEqual(['debug', 'txbarrier outbox published', expect.objectContaining({ id: good, attempt: 1 })]);
      expect(find('will retry')).toEqual(['warn', 'txbarrier outbox publish failed; will retry', expect.objectContaining({ id: poison, retryInMs: 0 })]);
      expect(find('parked a message')[0]).toBe('error');
      expect(find('parked a message')[2]).toMatchObject({ id: poison, attempt: 2, err: expect.any(Error) });
      expect(find('onParked hook threw')[2].err).toEqual(new Error('hook broke'));
      expect(await receivedIds([good!, next!])).toEqual([good, next]);
      await clear();
    });

    it('prunes sent messages only: by hand and from the relay', async () => {
      await enqueueMany(3);
      const relay = createRelay(db.outbox, { publisher: mq.publisher() });
      await relay.runOnce();
      await relay.stop();
      await enqueueMany(2);
      expect(await db.outbox.prune({ olderThan: '1h' })).toBe(0);
      expect(await db.outbox.prune({ olderThan: 0, batchSize: 2 })).toBe(3);
      expect(await db.outbox.counts()).toEqual({ pending: 2, sent: 0, parked: 0 });
      const pruning = createRelay(db.outbox, { publisher: mq.publisher(), retainSent: 0, pruneInterval: 0, pollInterval: 20 });
      pruning.start();
      await waitUntil('sent and pruned', async () => {
        const counts = await db.outbox.counts();
        return counts.pending === 0 && counts.sent === 0;
      });
      await pruning.stop();
      await clear();
    });
  });
}

const postgres = ENGINES.find((e) => e.name === 'postgres')!;

describe.skipIf(postgres.skip || amqp.skip)('outbox on postgres: LISTEN/NOTIFY and executors', () => {
  let db: EngineHarness;
  let mq: BrokerHarness;
  beforeAll(async () => {
    db = await openEngine('postgres');
    mq = await amqp.open();
  });
  afterAll(async () => {
    await mq?.close();
    await db?.close();
  });

  it('wakes a relay at commit, long before its next poll', async () => {
    const topic = mq.topic('notify');
    await mq.accept(topic);
    const relay = createRelay(db.outbox, {
      publisher: mq.publisher(),
      pollInterval: '1h',
      listen: postgresListener(db.pool as never),
    });
    relay.start();
    // The first poll runs at start; wait for it to find nothing, then enqueue.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    const id = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic, payload: 'wake up' }));
    await waitUntil('it arrived', async () => (await mq.received()).some((m) => m.id === id), { timeoutMs: 5000 });
    expect(Date.now() - started).toBeLessThan(3000);
    await relay.stop();
  });

  it("notifies on a channel within PostgreSQL's 63 characters, however long schema.table is", async () => {
    const topic = mq.topic('long');
    await mq.accept(topic);
    const schema = `txb_${randomUUID().replaceAll('-', '')}_${'s'.repeat(20)}`;
    const outbox = createOutbox(db.store, { table: `${schema}.outbox_${'t'.repeat(50)}` });
    expect(outbox.table.length).toBeGreaterThan(63);
    expect(outbox.channel.length).toBeLessThanOrEqual(63);
    await outbox.ensureSchema();
    const relay = createRelay(outbox, { publisher: mq.publisher(), pollInterval: '1h', listen: postgresListener(db.pool as never) });
    try {
      relay.start();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = Date.now();
      const id = await outbox.store.transaction(({ tx }) => outbox.enqueue(tx, { topic, payload: 'wake up' }));
      await waitUntil('it arrived', async () => (await mq.received()).some((m) => m.id === id), { timeoutMs: 5000 });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await relay.stop();
      await db.query(`DROP SCHEMA "${schema}" CASCADE`);
    }
  });

  it('listens again after its connection was killed', async () => {
    const topic = mq.topic('relisten');
    await mq.accept(topic);
    const lost: unknown[] = [];
    const relay = createRelay(db.outbox, {
      publisher: mq.publisher(),
      pollInterval: '1h',
      listen: postgresListener(db.pool as never, { reconnectDelay: 50, onError: (error) => lost.push(error) }),
    });
    relay.start();
    const listening = async () =>
      (await db.query('SELECT pid FROM pg_stat_activity WHERE query = $1 AND datname = current_database()', [`LISTEN "${db.outbox.table}"`])).map(
        (row) => Number(row.pid),
      );
    await waitUntil('the relay listens', async () => (await listening()).length === 1);
    const [first] = await listening();
    await db.query('SELECT pg_terminate_backend($1)', [first]);
    await waitUntil('it listens on a new connection', async () => {
      const pids = await listening();
      return pids.length === 1 && pids[0] !== first;
    });
    expect(lost.length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const id = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic, payload: 'again' }));
    await waitUntil('it arrived without a poll', async () => (await mq.received()).some((m) => m.id === id), { timeoutMs: 3000 });
    await relay.stop();
  });

  it('enqueues inside barrier.within on a knex transaction, and rolls back with it', async () => {
    const k = knex({ client: 'pg', connection: POSTGRES_URL, pool: { min: 0, max: 2 } });
    try {
      const topic = mq.topic('knex');
      const committed = await k.transaction(async (trx) => {
        const executor = knexExecutor(trx, { table: db.store.table });
        const result = await Barrier.from({ transType: 'saga', gid: randomUUID(), branchId: '01', op: 'action' }).within(executor, async () =>
          db.outbox.enqueue(executor, { topic, payload: 'from knex' }),
        );
        return result.outcome === 'applied' ? result.value : undefined;
      });
      await expect(
        k.transaction(async (trx) => {
          await db.outbox.enqueue(knexExecutor(trx), { topic, payload: 'rolled back' });
          throw new Error('business failure');
        }),
      ).rejects.toThrow('business failure');
      expect((await db.outbox.pending()).map((m) => m.id)).toEqual([committed]);
      await expect(
        k.transaction((trx) => db.outbox.enqueue(knexExecutor(trx, { dialect: 'sqlite' }), { topic, payload: 'x' })),
      ).rejects.toMatchObject({ code: 'ERR_TXBARRIER_OUTBOX_NOT_IN_TRANSACTION' });
    } finally {
      await k.destroy();
    }
  });
});
