/**
 * `txbarrier/nats` against the real NATS JetStream. Skipped with a message when no server answers;
 * TXBARRIER_REQUIRE_BROKER=1 (CI) makes that a failure.
 */
import { randomBytes } from 'node:crypto';
import { AckPolicy, connect, headers as natsHeaders, type JetStreamManager, type JsMsg, type NatsConnection } from 'nats';
import { describe, expect, it } from 'vitest';
import { consumeNats, type SettledEvent } from '../../adapters/brokers/nats/consumer.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { probeBroker } from './harness.js';
import { DUPLICATE_WINDOW_MS, natsHarness, probeNats } from './nats-harness.js';
import { describeConsumerSuite } from './suite.js';
import { tracingFromHeaders } from './tracing.js';
import { waitUntil } from '../support/server-harness.js';
import { openTempDb } from '../stores/sqlite-harness.js';
import { NATS_URL } from '../../servers/index.js';

const reachable = await probeBroker(`NATS JetStream at ${NATS_URL}`, 'TXBARRIER_NATS_URL', probeNats);

describeConsumerSuite(natsHarness, reachable, { reconnects: true, keepsDeadLetters: false, dedupeWindowMs: DUPLICATE_WINDOW_MS + 100 });

/** A stream of its own, a connection and an SQLite store; the stream is deleted afterwards. */
async function scratch(test: (t: { stream: string; nc: NatsConnection; jsm: JetStreamManager; store: ReturnType<typeof sqliteStore> }) => Promise<void>) {
  const stream = `txb_consumers_${randomBytes(6).toString('hex')}`;
  const nc = await connect({ servers: NATS_URL });
  const { db } = openTempDb();
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    const store = sqliteStore(db);
    await store.ensureSchema();
    await test({ stream, nc, jsm, store });
    await jsm.streams.delete(stream);
  } finally {
    db.close();
    await nc.close();
  }
}

describe.skipIf(!reachable)('txbarrier/nats set-up', () => {
  it('refuses a consumer that would stop delivering before the attempts are spent, or acks in bulk, and bad options', () =>
    scratch(async ({ stream, nc, jsm, store }) => {
      await jsm.consumers.add(stream, { durable_name: 'limited', ack_policy: AckPolicy.Explicit, max_deliver: 3 });
      await jsm.consumers.add(stream, { durable_name: 'bulk', ack_policy: AckPolicy.All });
      const js = nc.jetstream();
      const options = { store, consumer: 'ledger-service', handle: () => undefined, maxAttempts: 5 };
      await expect(consumeNats({ ...options, jetStreamConsumer: await js.consumers.get(stream, 'limited') })).rejects.toMatchObject({
        code: 'ERR_TXBARRIER_DELIVERY_LIMIT',
      });
      await expect(consumeNats({ ...options, jetStreamConsumer: await js.consumers.get(stream, 'bulk') })).rejects.toMatchObject({
        code: 'ERR_TXBARRIER_CONSUMER_CONFIG',
      });
      // Options out of range are refused before anything is asked of the broker.
      const limited = await js.consumers.get(stream, 'limited');
      for (const bad of [{ maxAttempts: 0 }, { retryBackoff: 0.5 }, { concurrency: 0 }, { expires: 500 }, { consumer: 'trailing ' }]) {
        await expect(consumeNats({ ...options, ...bad, jetStreamConsumer: limited }), JSON.stringify(bad)).rejects.toMatchObject({
          code: expect.stringMatching(/^ERR_TXBARRIER_(OPTION|INPUT)$/),
        });
      }
    }));
});

describe.skipIf(!reachable)('txbarrier/nats tracing', () => {
  const spans = tracingFromHeaders();

  it("continues the trace of the message's traceparent header", () =>
    scratch(async ({ stream, nc, jsm, store }) => {
      await jsm.consumers.add(stream, { durable_name: 'ledger-service', ack_policy: AckPolicy.Explicit });
      const settled: SettledEvent<JsMsg>[] = [];
      const consumer = await consumeNats({
        jetStreamConsumer: await nc.jetstream().consumers.get(stream, 'ledger-service'),
        store,
        consumer: 'ledger-service',
        handle: () => undefined,
        onSettled: (event) => settled.push(event),
      });
      const traceId = randomBytes(16).toString('hex');
      const parentSpanId = randomBytes(8).toString('hex');
      const headers = natsHeaders();
      headers.set('traceparent', `00-${traceId}-${parentSpanId}-01`);
      await nc.jetstream().publish(`${stream}.payments`, new Uint8Array(), { msgID: `message-${randomBytes(6).toString('hex')}`, headers });
      await waitUntil('settled', async () => settled.length === 1);
      await consumer.stop();
      expect(spans.of(traceId)).toEqual([['txbarrier saga action', 'applied', parentSpanId]]);
    }));
});
