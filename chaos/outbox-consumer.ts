/**
 * The consuming service of the outbox chaos run: applies each message with the barrier (gid = the
 * message id, branch = this service), acknowledging only after the commit. With
 * KILL_AFTER_COMMITS=n it SIGKILLs itself after its n-th commit, before the ack: the broker then
 * redelivers a message whose effect already committed. A message marked poison is dead-lettered
 * (recorded once, then rejected). A lost broker connection is reopened.
 */
import amqp from 'amqplib';
import { connect as natsConnect, type JsMsg } from 'nats';
import { Barrier, BarrierFailure } from '../src/index.js';
import { exitOnConnectionLoss, kafkaThroughProxy, openStore, placeholders, settingsFromEnv, tell } from './outbox-env.js';

exitOnConnectionLoss();
const settings = settingsFromEnv();
const killAfter = Number(process.env.KILL_AFTER_COMMITS ?? 0);
const { store, run } = openStore(settings, { consumer: true, table: settings.barrierTable });
const CONSUMER = 'chaos-consumer';
// The control experiment: the same consumer applying every delivery, with no barrier.
const withoutBarrier = process.env.CHAOS_NO_BARRIER === '1';
let commits = 0;

/** Applies one message; resolves to what to tell the broker. */
async function handle(id: string | undefined, body: string): Promise<'ack' | 'reject'> {
  if (!id) {
    tell({ event: 'no-id' });
    return 'reject';
  }
  const { amount, poison } = JSON.parse(body) as { amount: number; poison?: boolean };
  if (withoutBarrier && !poison) {
    await store.transaction(({ tx }) =>
      run(tx, placeholders(settings.engine, `INSERT INTO ${settings.effectsTable} (message_id, amount) VALUES (?, ?)`), [id, amount]),
    );
    if (++commits === killAfter) process.kill(process.pid, 'SIGKILL');
    return 'ack';
  }
  try {
    const result = await Barrier.from({ transType: 'saga', gid: id, branchId: CONSUMER, op: 'action' }).call(store, async (tx) => {
      if (poison) throw new BarrierFailure(`message ${id} is poison`);
      await run(tx, placeholders(settings.engine, `INSERT INTO ${settings.effectsTable} (message_id, amount) VALUES (?, ?)`), [id, amount]);
    });
    tell({ event: result.outcome, id });
    if (result.outcome === 'applied' && ++commits === killAfter) {
      tell({ event: 'killing-self', after: commits });
      process.kill(process.pid, 'SIGKILL');
    }
    return 'ack';
  } catch (error) {
    if (!(error instanceof BarrierFailure)) throw error;
    // Dead-lettered, and recorded exactly once under a branch of its own.
    await Barrier.from({ transType: 'saga', gid: id, branchId: `${CONSUMER}-dead`, op: 'action' }).call(store, (tx) =>
      run(tx, placeholders(settings.engine, `INSERT INTO ${settings.deadTable} (message_id) VALUES (?)`), [id]),
    );
    tell({ event: 'dead-lettered', id });
    return 'reject';
  }
}

if (settings.broker === 'amqp') {
  // Reconnects by itself when the connection drops; what was unacked is redelivered meanwhile.
  const consume = async (): Promise<void> => {
    const connection = await amqp.connect(settings.brokerUrl);
    connection.on('error', () => undefined);
    connection.on('close', () => setTimeout(() => void consume().catch(retry), 100));
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    await channel.prefetch(20);
    await channel.consume(settings.topic, (message) => {
      if (!message) return;
      handle(message.properties.messageId as string | undefined, message.content.toString()).then(
        (verdict) => (verdict === 'ack' ? channel.ack(message) : channel.nack(message, false, false)),
        (error) => {
          tell({ event: 'error', error: String(error) });
          channel.nack(message, false, true);
        },
      ).catch(() => undefined); // the channel closed under us: the broker redelivers
    });
  };
  const retry = () => setTimeout(() => void consume().catch(retry), 200);
  await consume();
} else if (settings.broker === 'kafka') {
  // One message at a time per partition; its offset is committed after it was applied or recorded
  // dead, so a kill or a lost commit brings it back to the barrier.
  const kafka = await kafkaThroughProxy(settings.brokerUrl);
  const consumer = kafka.consumer({ groupId: settings.durable, sessionTimeout: 3000, rebalanceTimeout: 3000, heartbeatInterval: 300, maxWaitTimeInMs: 100 });
  // kafkajs restarts itself after a dropped connection; when it gives up, the run restarts this process.
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) process.exit(1);
  });
  await consumer.connect();
  await consumer.subscribe({ topic: settings.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      for (;;) {
        try {
          // 'reject' too is settled: the poison message was recorded dead.
          await handle(message.headers?.['message-id']?.toString(), message.value?.toString() ?? '');
          break;
        } catch (error) {
          tell({ event: 'error', error: String(error) });
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      await consumer.commitOffsets([{ topic, partition, offset: String(BigInt(message.offset) + 1n) }]);
    },
  });
} else {
  const nc = await natsConnect({ servers: settings.brokerUrl, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  const js = nc.jetstream();
  const consumer = await js.consumers.get(settings.stream, settings.durable);
  const messages = await consumer.consume({ max_messages: 20 });
  const settle = async (message: JsMsg) => {
    try {
      const verdict = await handle(message.headers?.get('Nats-Msg-Id') || undefined, message.string());
      if (verdict === 'ack') message.ack();
      else message.term();
    } catch (error) {
      tell({ event: 'error', error: String(error) });
      message.nak(200);
    }
  };
  void (async () => {
    for await (const message of messages) void settle(message);
  })();
}
tell({ event: 'ready' });
process.once('SIGTERM', () => process.exit(0));
