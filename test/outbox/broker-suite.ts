/**
 * The outbox end to end against one broker on one engine: enqueue in the business transaction, a
 * relay publishing with confirms/acks, retries and parking, and the per-key order. Run by
 * test/outbox/outbox.test.ts for each default broker and by the heavy suites for theirs (Kafka).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Barrier } from '../../src/index.js';
import { createRelay, type RelayEvent } from '../../src/messaging/outbox/index.js';
import { type BrokerHarness, type EngineHarness, type EngineName, openEngine, type OutboxBroker } from './harness.js';
import { waitUntil } from '../support/server-harness.js';

const saga = () => Barrier.from({ transType: 'saga', gid: randomUUID(), branchId: '01', op: 'action' });
// One immediate retry, then 20 ms, doubling, capped at 30 ms; parked at the fourth failure.
const FAST_RETRY = { immediate: 1, interval: 20, backoff: 2, maxInterval: 30, maxAttempts: 4 };
const POLL = 30;

export function describeOutboxBroker(engine: { name: EngineName; skip: boolean }, broker: OutboxBroker): void {
  describe.skipIf(engine.skip || broker.skip)(`outbox on ${engine.name} → ${broker.name}`, () => {
    let db: EngineHarness;
    let mq: BrokerHarness;
    beforeAll(async () => {
      db = await openEngine(engine.name);
      mq = await broker.open();
    });
    afterAll(async () => {
      await mq?.close();
      await db?.close();
    });

    it('publishes what committed, exactly as enqueued, and nothing that rolled back', async () => {
      const topic = mq.topic('orders');
      await mq.accept(topic);
      const committed: string[] = [];
      for (let i = 0; i < 6; i++) {
        const payload = i % 2 === 0 ? { order: i } : `order ${i}`;
        const result = await saga().call(db.outbox.store, async (tx) => {
          await db.writeBusiness(tx, `order-${i}-${randomUUID()}`);
          return db.outbox.enqueue(tx, { topic, payload, headers: { 'x-order': String(i) } });
        });
        if (result.outcome === 'applied') committed.push(result.value);
      }
      // A transaction that enqueues and then fails: neither its business row nor its message survives.
      await expect(
        db.outbox.store.transaction(async ({ tx }) => {
          await db.outbox.enqueue(tx, { topic, payload: 'rolled back' });
          throw new Error('business failure');
        }),
      ).rejects.toThrow('business failure');
      expect((await db.outbox.pending()).map((m) => m.id)).toEqual(committed);

      const relay = createRelay(db.outbox, { publisher: mq.publisher() });
      expect(await relay.runOnce()).toBe(6);
      expect(await relay.runOnce()).toBe(0);
      await relay.stop();

      await waitUntil('every message arrived', async () => (await mq.received()).length >= 6);
      const received = await mq.received();
      expect(received.map((m) => m.id).sort()).toEqual([...committed].sort());
      expect(received.map((m) => m.payload)).not.toContain('rolled back');
      const first = received.find((m) => m.id === committed[0])!;
      expect(JSON.parse(first.payload)).toEqual({ order: 0 });
      expect(first.headers['content-type']).toBe('application/json');
      expect(first.headers['x-order']).toBe('0');
      expect(await db.outbox.counts()).toEqual({ pending: 0, sent: 6, parked: 0 });
      // Ids are UUIDv7: version 7, time-ordered.
      for (const id of committed) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });

    it('retries a message the broker refuses, then parks it and says so; requeue sends it once accepted', async () => {
      const topic = mq.deadTopic();
      const id = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic, payload: 'poison' }));
      const retries: RelayEvent[] = [];
      const parked: RelayEvent[] = [];
      const relay = createRelay(db.outbox, {
        publisher: mq.publisher(),
        retry: FAST_RETRY,
        pollInterval: POLL,
        onRetry: (e) => retries.push(e),
        onParked: (e) => parked.push(e),
      });
      relay.start();
      await waitUntil('the message was parked', async () => parked.length === 1);
      await relay.stop();
      expect(retries.map((e) => [e.attempt, e.retryInMs])).toEqual([
        [1, 0],
        [2, 20],
        [3, 30],
      ]);
      expect(parked[0]).toMatchObject({ id, topic, attempt: 4 });
      const [entry] = await db.outbox.parked();
      expect(entry).toMatchObject({ id, topic, attempts: 4 });
      expect(entry!.lastError).toBeTruthy();

      expect(await db.outbox.requeue([id])).toBe(1);
      expect((await db.outbox.pending()).map((m) => m.id)).toEqual([id]);
      // Still refused: it goes back to being parked. Drop it so the next tests start clean.
      await db.query(`DELETE FROM ${db.outbox.table} WHERE id = ${db.name === 'postgres' ? '$1' : '?'}`, [id]);
    });

    it('keeps the order of each key, and a parked message holds back the rest of its key', async () => {
      const good = mq.topic('ordered');
      await mq.accept(good);
      const blocked = broker.requeueInOrder ? mq.topic(`late-${randomUUID().slice(0, 6)}`) : mq.deadTopic();
      const before = (await mq.received()).length;
      const enqueue = (topic: string, key: string, payload: string) =>
        db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic, key, payload }));
      // Key a: a1 cannot be delivered yet; a2 and a3 must wait for it. Key b flows freely.
      const a1 = await enqueue(blocked, 'a', 'a1');
      await enqueue(good, 'a', 'a2');
      await enqueue(good, 'b', 'b1');
      await enqueue(good, 'a', 'a3');
      await enqueue(good, 'b', 'b2');
      const parked: string[] = [];
      const relay = createRelay(db.outbox, { publisher: mq.publisher(), retry: FAST_RETRY, pollInterval: POLL, onParked: (e) => parked.push(e.id) });
      relay.start();
      await waitUntil('a1 was parked', async () => parked.length === 1);
      await waitUntil('b arrived', async () => (await mq.received()).slice(before).length >= 2);
      const payloads = async () => (await mq.received()).slice(before).map((m) => m.payload);
      expect(await payloads()).toEqual(['b1', 'b2']);
      expect((await db.outbox.pending()).map((m) => m.key)).toEqual(['a', 'a']);

      if (broker.requeueInOrder) {
        // Now a1 can go: requeued, it goes first, then the rest of its key in order.
        await mq.accept(blocked);
        await db.outbox.requeue([a1]);
        await waitUntil('key a arrived', async () => (await payloads()).length === 5);
        expect((await payloads()).filter((p) => p.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
      }
      await relay.stop();
      await db.query(`DELETE FROM ${db.outbox.table}`);
    });
  });
}
