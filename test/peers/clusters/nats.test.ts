/**
 * NATS JetStream: three servers (servers/nats-cluster.ts), a stream with three replicas, its leader
 * SIGKILLed mid-stream (see pipeline.ts). The relay's and the consumer's connections are given
 * every server's URL and no other help: nats.js moves them to a live server by itself.
 */
import { randomBytes } from 'node:crypto';
import { AckPolicy, connect, type NatsConnection, nanos } from 'nats';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { consumeNats } from '../../../adapters/brokers/nats/consumer.js';
import { natsPublisher } from '../../../adapters/brokers/nats/publisher.js';
import { type NatsCluster, startNatsCluster } from '../../../servers/nats-cluster.js';
import { tcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';
import { type ClusterBroker, runPipeline } from './pipeline.js';

/** What a clustered deployment's clients set: every server, tried in order, reconnecting for ever, quickly. */
const reconnecting = { noRandomize: true, reconnectTimeWait: 250, maxReconnectAttempts: -1 };

describe("NATS JetStream cluster: a stream's leader SIGKILLed mid-stream", () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await startNatsCluster();
  });
  afterAll(() => cluster?.stop());

  it('applies every committed message once: the relay retries the publishes whose acks were lost, the consumer absorbs the copies', async () => {
    const stream = `TXB_CLUSTER_${randomBytes(4).toString('hex').toUpperCase()}`;
    const durable = 'ledger-service';
    const connections: NatsConnection[] = [];
    const open = async (servers: string[]) => {
      const nc = await connect({ servers, ...reconnecting });
      connections.push(nc);
      return nc;
    };
    const admin = await open(cluster.urls);
    const jsm = await admin.jetstreamManager();
    // A short duplicate window, so the relay's retries reach the consumer rather than being dropped by the stream.
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], num_replicas: 3, duplicate_window: nanos(200) });
    await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: nanos(2000), max_deliver: -1 });
    const leaderName = async () => {
      const { cluster: placement } = await jsm.streams.info(stream);
      if (!placement?.leader) throw new Error(`stream ${stream} has no leader now`);
      return placement.leader;
    };
    const first = cluster.server(await leaderName());
    const others = cluster.urls.filter((url) => url !== first.url);
    let proxy: TcpProxy | undefined;
    let relayConnection: NatsConnection | undefined;
    const broker: ClusterBroker = {
      name: 'NATS',
      topic: `${stream}.orders`,
      leader: async () => cluster.server(await leaderName()),
      async consume({ store, consumer, apply, onSettled, logger }) {
        // Both clients start on the leader, so its death cuts them off.
        const nc = await open([first.url, ...others]);
        proxy = await tcpProxy(first.port);
        relayConnection = await open([`nats://127.0.0.1:${proxy.port}`, ...others]);
        return consumeNats({
          jetStreamConsumer: await nc.jetstream({ timeout: 2000 }).consumers.get(stream, consumer),
          store,
          consumer,
          concurrency: 16,
          // Back to pulling within seconds of a failover (nats.js waits a whole pull's expiry before checking again).
          expires: 5000,
          retryDelay: 200,
          handle: (tx, message) => apply(tx, message.headers!.get('Nats-Msg-Id')),
          onSettled,
          logger,
        });
      },
      publisher: () => natsPublisher({ jetstream: relayConnection!.jetstream(), timeout: 2000 }),
      loseConfirms: () => proxy!.stall('replies'),
      async unsettled() {
        const info = await jsm.consumers.info(stream, durable);
        return info.num_pending + info.num_ack_pending;
      },
      async close() {
        await jsm.streams.delete(stream).catch(() => undefined);
        for (const nc of connections) await nc.close();
        await proxy?.close();
      },
    };
    await runPipeline(broker);
  });
});
