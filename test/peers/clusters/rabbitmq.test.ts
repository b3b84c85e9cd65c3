/**
 * RabbitMQ: three nodes (servers/rabbitmq-cluster.ts), a quorum queue, its leader SIGKILLed mid-stream
 * (see pipeline.ts). The relay's publisher and the consumer are given every node's URL and no other
 * help: each moves to a live node by itself.
 */
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumeAmqp } from '../../../adapters/brokers/amqp/consumer.js';
import { amqpPublisher } from '../../../adapters/brokers/amqp/publisher.js';
import { type RabbitCluster, startRabbitCluster } from '../../../servers/rabbitmq-cluster.js';
import { tcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';
import { type ClusterBroker, runPipeline } from './pipeline.js';

// What a clustered deployment declares: a quorum queue whose dead letters go out at least once.
// (The leader locator puts the queue's leader on the node it is declared from: here the first.)
const queueOptions = {
  durable: true,
  arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish', 'x-queue-leader-locator': 'client-local' },
};

describe('RabbitMQ cluster: a quorum queue\'s leader SIGKILLed mid-stream', () => {
  let cluster: RabbitCluster;
  beforeAll(async () => {
    cluster = await startRabbitCluster();
  });
  afterAll(() => cluster?.stop());

  it('applies every committed message once: the relay retries the publishes whose confirms were lost, the consumer absorbs the copies', async () => {
    const queue = `txb-cluster-${randomUUID().slice(0, 8)}`;
    let proxy: TcpProxy | undefined;
    const broker: ClusterBroker = {
      name: 'RabbitMQ',
      topic: queue,
      leader: () => cluster.leaderOf(queue),
      async consume({ store, consumer, apply, onSettled, logger }) {
        const running = await consumeAmqp({
          // Every node: the consumer starts on the first, the leader, and moves on when it dies.
          connect: (url) => amqp.connect(url),
          urls: cluster.urls,
          queue,
          queueOptions,
          store,
          consumer,
          prefetch: 16,
          retryDelay: 200,
          handle: (tx, message) => apply(tx, String(message.properties.messageId)),
          onSettled,
          logger,
        });
        // The consumer declared the queue from the first node, which client-local placement makes its leader.
        expect((await cluster.leaderOf(queue)).name).toBe(cluster.nodes[0]!.name);
        proxy = await tcpProxy(cluster.nodes[0]!.port);
        return running;
      },
      publisher: () =>
        amqpPublisher({ connect: (url) => amqp.connect(url), urls: [`amqp://guest:guest@127.0.0.1:${proxy!.port}`, ...cluster.urls.slice(1)], timeout: '3s' }),
      loseConfirms: () => proxy!.stall('replies'),
      async unsettled() {
        // On a node that runs now: the first may be the one killed.
        const connection = await amqp.connect(cluster.nodes.find((node) => node.running)!.url);
        try {
          const channel = await connection.createChannel();
          return (await channel.checkQueue(queue)).messageCount;
        } finally {
          await connection.close();
        }
      },
      close: async () => {
        await proxy?.close();
      },
    };
    await runPipeline(broker);
  });
});
