/**
 * A relay process of the outbox chaos run. With KILL_AFTER_PUBLISHES=n it SIGKILLs itself right
 * after the broker confirmed its n-th message, before the outbox records it as sent: the crash
 * that makes a relay publish a message twice.
 */
import amqp from 'amqplib';
import { connect as natsConnect } from 'nats';
import { amqpPublisher } from '../adapters/brokers/amqp/publisher.js';
import { kafkaPublisher } from '../adapters/brokers/kafka/publisher.js';
import { natsPublisher } from '../adapters/brokers/nats/publisher.js';
import { postgresListener } from '../adapters/stores/postgres-listener.js';
import { createOutbox, createRelay, type OutboxPublisher } from '../src/messaging/outbox/index.js';
import { exitOnConnectionLoss, kafkaThroughProxy, openStore, settingsFromEnv, tell } from './outbox-env.js';
import pg from 'pg';

exitOnConnectionLoss();
const settings = settingsFromEnv();
const killAfter = Number(process.env.KILL_AFTER_PUBLISHES ?? 0);
const database = settings.relayDatabases?.[Number(process.env.RELAY_INDEX ?? 0)];
const { store, close } = openStore(settings, { readCommitted: true, ...(database ? { database } : {}) });
const outbox = createOutbox(store, { table: settings.outboxTable });

let publisher: OutboxPublisher;
let closeBroker = async () => {};
if (settings.broker === 'amqp') {
  publisher = amqpPublisher({ connect: () => amqp.connect(settings.brokerUrl) });
} else if (settings.broker === 'kafka') {
  publisher = kafkaPublisher({ kafka: await kafkaThroughProxy(settings.brokerUrl), timeout: 2000 });
} else {
  const nc = await natsConnect({ servers: settings.brokerUrl, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  publisher = natsPublisher({ jetstream: nc.jetstream(), timeout: 1000 });
  closeBroker = () => nc.close();
}

let published = 0;
const crashing: OutboxPublisher = {
  system: publisher.system,
  async publish(message) {
    await publisher.publish(message);
    if (++published === killAfter) {
      tell({ event: 'killing-self', after: published });
      process.kill(process.pid, 'SIGKILL');
    }
  },
  close: () => publisher.close?.() ?? Promise.resolve(),
};

let listenPool: pg.Pool | undefined;
if (settings.engine === 'postgres') {
  listenPool = new pg.Pool({ connectionString: settings.database, max: 1 });
  listenPool.on('error', () => undefined);
}
const relay = createRelay(outbox, {
  publisher: crashing,
  batchSize: 20,
  pollInterval: 100,
  lease: '1s',
  retry: { immediate: 1, interval: 100, backoff: 2, maxInterval: 400, maxAttempts: 7 },
  ...(listenPool ? { listen: postgresListener(listenPool, { onError: () => undefined }) } : {}),
  onParked: (e) => tell({ event: 'parked', id: e.id, error: String(e.error) }),
  onError: (error) => tell({ event: 'round-error', error: String(error) }),
});
relay.start();
tell({ event: 'ready' });

process.once('SIGTERM', async () => {
  await relay.stop();
  await closeBroker();
  await listenPool?.end();
  await close();
  process.exit(0);
});
