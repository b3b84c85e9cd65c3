import { randomUUID } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { type AmqpChannel, consumeAmqp } from '../../adapters/brokers/amqp/consumer.js';
import { type BrokerHarness, type BrokerRun, amountOf, payload } from './harness.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { AMQP_URL } from '../../servers/index.js';

export async function probeAmqp(): Promise<void> {
  const connection = await amqp.connect(AMQP_URL, { timeout: 3000 });
  await connection.close();
}

/** The queue's declaration, shared by the publisher (which may come first) and the consumer. */
const queueOptions = { durable: true };

async function run(queue: string): Promise<BrokerRun> {
  const url = new URL(AMQP_URL);
  const proxy = await tcpProxy(Number(url.port || 5672), url.hostname);
  const proxied = new URL(AMQP_URL);
  proxied.port = String(proxy.port);
  const connections = new Set<ChannelModel>();
  const connect = async (viaProxy = false) => {
    const connection = await amqp.connect(viaProxy ? proxied.href : AMQP_URL);
    connection.on('error', () => undefined);
    connections.add(connection);
    return connection;
  };
  const admin = await (await connect()).createConfirmChannel();
  const deadLetter = `${queue}.dead-letter`;
  await admin.assertQueue(queue, { ...queueOptions, deadLetterExchange: deadLetter });
  const retryQueues = new Set<string>();

  return {
    params: { queue },
    async publish(messages) {
      for (const message of messages) admin.sendToQueue(queue, payload(message), message.id === undefined ? {} : { messageId: message.id });
      await admin.waitForConfirms();
    },
    async consume({ ledger, effect, loseFirstAck, viaProxy, ...policy }) {
      const connection = await connect(viaProxy);
      const raw = await connection.createConfirmChannel();
      const consumer = await consumeAmqp({
        ...policy,
        channel: loseFirstAck ? lossy(raw) : raw,
        queue,
        queueOptions,
        store: ledger.store,
        consumer: 'ledger-service',
        prefetch: 8,
        handle: async (tx, message: ConsumeMessage) => {
          const id = String(message.properties.messageId);
          await ledger.credit(tx, id, amountOf(message.content));
          await effect?.(id);
        },
      });
      for (const name of consumer.topology.retryQueues) retryQueues.add(name);
      return {
        async stop() {
          await consumer.stop();
          await connection.close().catch(() => undefined);
          connections.delete(connection);
        },
      };
    },
    dropConnections: () => proxy.drop(),
    async unsettled() {
      let count = (await admin.checkQueue(queue)).messageCount;
      for (const name of retryQueues) count += (await admin.checkQueue(name)).messageCount;
      return count;
    },
    deadLettered: async () => (await admin.checkQueue(deadLetter)).messageCount,
    async cleanup() {
      for (const name of [queue, deadLetter, ...retryQueues]) await admin.deleteQueue(name);
      await admin.deleteExchange(deadLetter);
      for (const connection of connections) await connection.close().catch(() => undefined);
      await proxy.close();
    },
  };
}

/** The channel, with each first ack turned into a requeue: the broker delivers the committed message again. */
function lossy(channel: ConfirmChannel): AmqpChannel<ConsumeMessage> {
  return {
    prefetch: (count) => channel.prefetch(count),
    assertQueue: (name, options) => channel.assertQueue(name, options),
    assertExchange: (name, type, options) => channel.assertExchange(name, type, options),
    bindQueue: (name, exchange, pattern) => channel.bindQueue(name, exchange, pattern),
    consume: (name, onMessage) => channel.consume(name, onMessage),
    cancel: (tag) => channel.cancel(tag),
    nack: (message, allUpTo, requeue) => channel.nack(message, allUpTo, requeue),
    ack: (message) => (message.fields.redelivered ? channel.ack(message) : channel.nack(message, false, true)),
    sendToQueue: (name, content, options, callback) => channel.sendToQueue(name, content, options, callback),
    waitForConfirms: () => channel.waitForConfirms(),
    on: (event, listener) => channel.on(event, listener),
  };
}

export const amqpHarness: BrokerHarness = {
  name: 'RabbitMQ',
  open: () => run(`txb-consumers-${randomUUID()}`),
  attach: (params) => run(params.queue as string),
};
