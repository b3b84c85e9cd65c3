import { randomBytes } from 'node:crypto';
import { AckPolicy, connect, type JsMsg, nanos, type NatsConnection } from 'nats';
import { consumeNats, type JetStreamConsumer, type JetStreamMessages } from '../../adapters/brokers/nats/consumer.js';
import { type BrokerHarness, type BrokerRun, amountOf, payload } from './harness.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { NATS_URL } from '../../servers/index.js';

export async function probeNats(): Promise<void> {
  const nc = await connect({ servers: NATS_URL, timeout: 3000 });
  try {
    await (await nc.jetstreamManager()).getAccountInfo();
  } finally {
    await nc.close();
  }
}

/** JetStream drops a republished `Nats-Msg-Id` for this long by itself; the suite waits it out. */
export const DUPLICATE_WINDOW_MS = 200;
const CONSUMER = 'ledger-service';

async function run(stream: string, create: boolean): Promise<BrokerRun> {
  const url = new URL(NATS_URL.replace(/^nats:/, 'http:'));
  const proxy = await tcpProxy(Number(url.port || 4222), url.hostname);
  const connections = new Set<NatsConnection>();
  const open = async (viaProxy = false) => {
    const nc = await connect({
      servers: viaProxy ? `127.0.0.1:${proxy.port}` : NATS_URL,
      reconnectTimeWait: 100,
      maxReconnectAttempts: -1,
    });
    connections.add(nc);
    return nc;
  };
  const admin = await open();
  const jsm = await admin.jetstreamManager();
  if (create) {
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], duplicate_window: nanos(DUPLICATE_WINDOW_MS) });
    // ack_wait is short so a consumer killed before its ack is redelivered within the test.
    await jsm.consumers.add(stream, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, ack_wait: nanos(1000), max_deliver: -1 });
  }
  const js = admin.jetstream();

  return {
    params: { stream },
    async publish(messages) {
      for (const message of messages) {
        await js.publish(`${stream}.payments`, payload(message), message.id === undefined ? {} : { msgID: message.id });
      }
    },
    async consume({ ledger, effect, loseFirstAck, viaProxy, ...policy }) {
      const nc = await open(viaProxy);
      // A short ack confirmation timeout, so an ack lost with the connection is given up on quickly.
      const source = await nc.jetstream({ timeout: 1000 }).consumers.get(stream, CONSUMER);
      const consumer = await consumeNats({
        ...policy,
        jetStreamConsumer: loseFirstAck ? lossy(source) : source,
        store: ledger.store,
        consumer: 'ledger-service',
        concurrency: 8,
        handle: async (tx, message: JsMsg) => {
          const id = message.headers!.get('Nats-Msg-Id');
          await ledger.credit(tx, id, amountOf(message.data));
          await effect?.(id);
        },
      });
      return {
        async stop() {
          await consumer.stop();
          await nc.close().catch(() => undefined);
          connections.delete(nc);
        },
      };
    },
    dropConnections: () => proxy.drop(),
    async unsettled() {
      const info = await jsm.consumers.info(stream, CONSUMER);
      return info.num_pending + info.num_ack_pending;
    },
    // JetStream keeps no dead-letter queue: `unsettled` shows a terminated message is gone.
    deadLettered: async () => 0,
    async cleanup() {
      await jsm.streams.delete(stream);
      for (const nc of connections) await nc.close().catch(() => undefined);
      await proxy.close();
    },
  };
}

/** The consumer, with each first delivery's ack turned into a `nak`: JetStream delivers the committed message again. */
function lossy(source: JetStreamConsumer<JsMsg>): JetStreamConsumer<JsMsg> {
  return {
    info: (cached) => source.info(cached),
    consume: async (options) => {
      const messages = await source.consume(options);
      const wrapped: JetStreamMessages<JsMsg> = {
        close: () => messages.close(),
        async *[Symbol.asyncIterator]() {
          for await (const message of messages) {
            if (message.info.deliveryCount > 1) yield message;
            else yield Object.assign(Object.create(message) as JsMsg, { ackAck: async () => (message.nak(), true) });
          }
        },
      };
      return wrapped;
    },
  };
}

export const natsHarness: BrokerHarness = {
  name: 'NATS JetStream',
  open: () => run(`txb_consumers_${randomBytes(6).toString('hex')}`, true),
  attach: (params) => run(params.stream as string, false),
};
