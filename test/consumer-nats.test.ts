/**
 * `txbarrier/nats` against the real NATS JetStream. Skipped with a message when no server answers;
 * TXBARRIER_REQUIRE_BROKER=1 (CI) makes that a failure.
 */
import { randomBytes } from 'node:crypto';
import { AckPolicy, connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { consumeNats } from '../adapters/nats.js';
import { sqliteStore } from '../adapters/sqlite.js';
import { probeBroker } from './consumer-harness.js';
import { DUPLICATE_WINDOW_MS, NATS_URL, natsHarness, probeNats } from './consumer-nats-harness.js';
import { describeConsumerSuite } from './consumer-suite.js';
import { openTempDb } from './sqlite-harness.js';

const reachable = await probeBroker(`NATS JetStream at ${NATS_URL}`, 'TXBARRIER_NATS_URL', probeNats);

describeConsumerSuite(natsHarness, reachable, { reconnects: true, keepsDeadLetters: false, dedupeWindowMs: DUPLICATE_WINDOW_MS + 100 });

describe.skipIf(!reachable)('txbarrier/nats set-up', () => {
  it('refuses a consumer that would stop delivering before the attempts are spent, or acks in bulk', async () => {
    const stream = `txb_consumers_${randomBytes(6).toString('hex')}`;
    const nc = await connect({ servers: NATS_URL });
    const { db } = openTempDb();
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
      await jsm.consumers.add(stream, { durable_name: 'limited', ack_policy: AckPolicy.Explicit, max_deliver: 3 });
      await jsm.consumers.add(stream, { durable_name: 'bulk', ack_policy: AckPolicy.All });
      const js = nc.jetstream();
      const options = { store: sqliteStore(db), consumer: 'ledger-service', handle: () => undefined, maxAttempts: 5 };
      await expect(consumeNats({ ...options, jetStreamConsumer: await js.consumers.get(stream, 'limited') })).rejects.toMatchObject({
        code: 'ERR_TXBARRIER_DELIVERY_LIMIT',
      });
      await expect(consumeNats({ ...options, jetStreamConsumer: await js.consumers.get(stream, 'bulk') })).rejects.toMatchObject({
        code: 'ERR_TXBARRIER_CONSUMER_CONFIG',
      });
      await jsm.streams.delete(stream);
    } finally {
      db.close();
      await nc.close();
    }
  });
});
