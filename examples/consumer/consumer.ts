/**
 * An exactly-once RabbitMQ consumer: the broker delivers at least once (a lost ack, a consumer
 * restart and a publisher's retry all deliver again), and the barrier turns that into exactly
 * once. Each message's effect runs in a local transaction together with a barrier row keyed by
 * the message id, and the message is acked only after that transaction committed; a redelivery
 * finds the row and is acked without running the effect again.
 */
import type { ConsumeMessage } from 'amqplib';
import { Barrier, BarrierFailure, type BarrierStore } from '../../src/index.js';

/** The part of an amqplib `Channel` the consumer uses. */
export interface ConsumerChannel {
  prefetch(count: number): Promise<unknown>;
  consume(queue: string, onMessage: (message: ConsumeMessage | null) => void): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  ack(message: ConsumeMessage): void;
  nack(message: ConsumeMessage, allUpTo?: boolean, requeue?: boolean): void;
}

/** What became of one delivery. */
export type Settlement = 'applied' | 'duplicate' | 'requeued' | 'rejected';

export interface ExactlyOnceOptions<Tx> {
  channel: ConsumerChannel;
  queue: string;
  store: BarrierStore<Tx>;
  /**
   * This consumer's name, stored as the barrier's branch id: two services consuming copies of
   * the same message (a fanout) each apply it once. Keep it stable across deploys.
   */
  consumer: string;
  /**
   * The message's effect, inside the local transaction. If it throws, the transaction rolls back
   * and the message comes again; throw `BarrierFailure` for one that can never apply.
   */
  handle: (tx: Tx, message: ConsumeMessage) => Promise<void> | void;
  /** Unacked messages in flight at once (default 16). */
  prefetch?: number;
  /** Told about every delivery once it is settled, and about each error that settled one. */
  onSettled?: (message: ConsumeMessage, settlement: Settlement, error?: unknown) => void;
}

/**
 * The barrier of one message for one consumer. The gid is the message id, the branch id the
 * consumer; `saga`/`action` because a consumed message is a forward op with nothing to undo: a
 * repeat is plainly `duplicate`. (`msg` is the producer's side, where a repeat is an error and the
 * coordinator's check-back reads the row.)
 */
export function messageBarrier(consumer: string, messageId: string): Barrier {
  return Barrier.from({ transType: 'saga', gid: messageId, branchId: consumer, op: 'action' });
}

/** Runs `handle` for `message` unless this consumer already committed it. Does not ack. */
export async function applyOnce<Tx>(
  store: BarrierStore<Tx>,
  consumer: string,
  message: ConsumeMessage,
  handle: (tx: Tx, message: ConsumeMessage) => Promise<void> | void,
): Promise<'applied' | 'duplicate'> {
  const messageId = messageIdOf(message);
  if (messageId === undefined) {
    throw new BarrierFailure('the message has no messageId: publish with { messageId } so its deliveries can be recognised');
  }
  const result = await messageBarrier(consumer, messageId).call(store, (tx) => handle(tx, message));
  return result.outcome === 'applied' ? 'applied' : 'duplicate';
}

function messageIdOf(message: ConsumeMessage): string | undefined {
  const id: unknown = message.properties.messageId;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * Consumes `queue`, applying each message once and acking it after its transaction committed.
 * A failed transaction is nacked back onto the queue to be tried again. A `BarrierFailure` (and a
 * message without an id, which cannot be recognised when it comes again) is rejected instead: to
 * the queue's dead-letter exchange if it has one, else dropped.
 */
export async function consumeExactlyOnce<Tx>(options: ExactlyOnceOptions<Tx>): Promise<{ stop(): Promise<void> }> {
  const { channel, queue, store, consumer, handle, prefetch = 16, onSettled } = options;
  await channel.prefetch(prefetch);
  const deliver = async (message: ConsumeMessage) => {
    let settlement: Settlement;
    let error: unknown;
    try {
      settlement = await applyOnce(store, consumer, message, handle);
    } catch (thrown) {
      error = thrown;
      settlement = thrown instanceof BarrierFailure ? 'rejected' : 'requeued';
    }
    try {
      if (settlement === 'applied' || settlement === 'duplicate') channel.ack(message);
      else channel.nack(message, false, settlement === 'requeued');
    } catch {
      // The channel closed under us. The broker requeues what we did not ack; if the
      // transaction committed, the barrier recognises the redelivery.
    }
    onSettled?.(message, settlement, error);
  };
  const { consumerTag } = await channel.consume(queue, (message) => {
    if (message) void deliver(message);
  });
  return { stop: async () => void (await channel.cancel(consumerTag)) };
}
