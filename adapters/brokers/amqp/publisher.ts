import { parseDuration } from '../../../src/duration.js';
import { BarrierConfigError } from '../../../src/errors.js';
import type { OutboxDelivery, OutboxPublisher } from '../../../src/messaging/outbox/index.js';
import { nodeConnector } from './nodes.js';

/** The part of an amqplib `ConfirmChannel` the publisher uses (amqplib is never imported here). */
export interface AmqpConfirmChannel {
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpPublishOptions,
    callback: (error: unknown) => void,
  ): boolean;
  on(event: 'close' | 'error' | 'drain' | 'return', listener: (...args: any[]) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
  close(): Promise<void>;
}

export interface AmqpPublishOptions {
  messageId: string;
  headers: Record<string, string>;
  persistent: boolean;
  mandatory: boolean;
  contentType?: string;
  timestamp: number;
}

/** The part of an amqplib `ChannelModel` (what `amqp.connect()` resolves to) the publisher uses. */
export interface AmqpConnection {
  createConfirmChannel(): Promise<AmqpConfirmChannel>;
  on(event: 'close' | 'error', listener: (...args: any[]) => void): unknown;
  close(): Promise<void>;
}

export interface AmqpPublisherOptions {
  /**
   * Opens a connection: `() => amqp.connect(url)`, or with `urls`, `(url) => amqp.connect(url)`.
   * The publisher calls it for its first publish and again after the connection dropped, opens its
   * own confirm channel on it, and closes both in `close()`. Give either this or `channel`.
   */
  connect?: (url: string) => Promise<AmqpConnection>;
  /**
   * The nodes of a cluster, for `connect`: each (re)connect tries them in turn, starting after the
   * node the previous connection went to, so the publisher moves to a live node when its node dies
   * (the publishes in flight fail and the relay retries them). Defaults to none: `connect` is called
   * without a URL.
   */
  urls?: readonly string[];
  /**
   * A confirm channel of yours (`connection.createConfirmChannel()`), used as it is: once it closes
   * every publish fails (and is retried by the relay) until you restart the relay with a new one.
   * `close()` leaves it open. Give either this or `connect`.
   */
  channel?: AmqpConfirmChannel;
  /** The exchange to publish to; the message's topic is the routing key. Defaults to `''`, the default exchange, where the topic names a queue. */
  exchange?: string;
  /**
   * Publish as `mandatory`, and count a message the broker returns as unroutable (no queue bound
   * for its routing key) as a failure to retry, instead of a confirmed message that went nowhere.
   * Defaults to `true`.
   */
  mandatory?: boolean;
  /** Delivery mode 2, so a durable queue keeps the message across a broker restart. Defaults to `true`. */
  persistent?: boolean;
  /**
   * The longest one publish may take, connecting included, and the longest `close()` waits: ms or
   * a duration. A connection that stalls without closing (a half-open TCP connection, a frozen
   * broker) never answers, so a publish past it fails: the relay retries it as any failed attempt
   * (it is parked only when its attempts are spent), and with `connect` the connection it waited
   * on is abandoned and the next publish opens a new one. Defaults to `'10s'`.
   */
  timeout?: number | string;
}

/**
 * An outbox publisher for RabbitMQ (amqplib) with publisher confirms: a message counts as sent only
 * once the broker has confirmed it. Its id goes out as the AMQP `messageId`, the id an exactly-once
 * consumer keys its barrier on.
 */
export function amqpPublisher(options: AmqpPublisherOptions): OutboxPublisher {
  const { connect, exchange = '', mandatory = true, persistent = true } = options;
  if ((connect === undefined) === (options.channel === undefined)) {
    throw new BarrierConfigError('amqpPublisher: give exactly one of connect (a function opening a connection) and channel (a confirm channel)');
  }
  if (options.urls !== undefined && !connect) throw new BarrierConfigError('amqpPublisher: urls are for connect; a channel is used as it is', { code: 'ERR_TXBARRIER_OPTION' });
  const connectNode = connect && nodeConnector(connect, options.urls, 'amqpPublisher');
  const timeoutMs = parseDuration(options.timeout ?? '10s', 'amqpPublisher timeout');
  let connection: Promise<AmqpConnection> | undefined;
  let channel: Promise<AmqpConfirmChannel> | undefined = options.channel && Promise.resolve(watch(options.channel));
  let closed = false;
  /** Ids of messages the broker returned as unroutable; a return arrives before its confirm. */
  const returned = new Set<string>();

  function watch(opened: AmqpConfirmChannel): AmqpConfirmChannel {
    // amqplib emits 'error' before 'close'; an unheard 'error' would crash the process. The
    // publishes in flight fail with the close, which is how the relay hears of it.
    opened.on('error', () => undefined);
    opened.on('return', (message: { properties?: { messageId?: unknown } }) => {
      const id = message.properties?.messageId;
      if (typeof id === 'string') returned.add(id);
    });
    if (connect) {
      opened.on('close', () => {
        if (channel && !closed) channel = undefined;
      });
    }
    return opened;
  }

  function openConnection(): Promise<AmqpConnection> {
    connection ??= connectNode!().then((opened) => {
      opened.on('error', () => undefined);
      opened.on('close', () => (connection = undefined));
      return opened;
    });
    // A failed connect is forgotten, so the next publish tries again.
    connection.catch(() => (connection = undefined));
    return connection;
  }

  function currentChannel(): Promise<AmqpConfirmChannel> {
    if (closed) return Promise.reject(new Error('amqpPublisher: closed'));
    channel ??= openConnection()
      .then((opened) => opened.createConfirmChannel())
      .then(watch);
    const current = channel;
    current.catch(() => {
      if (channel === current) channel = undefined;
    });
    return current;
  }

  return {
    system: 'rabbitmq',

    async publish(message: OutboxDelivery) {
      const used = currentChannel();
      try {
        await within(send(used, message), timeoutMs, `amqpPublisher: no confirm for message ${message.id} within ${timeoutMs} ms (a stalled connection?)`);
      } catch (error) {
        if (error instanceof PublishTimeout) abandon(used);
        else if (error instanceof Refused) retire(used);
        throw error;
      }
    },

    async close() {
      closed = true;
      if (!connect) return;
      const [openChannel, openConnectionNow] = [channel, connection];
      channel = connection = undefined;
      const closing = (async () => {
        await openChannel?.then((c) => c.close()).catch(() => undefined);
        await openConnectionNow?.then((c) => c.close()).catch(() => undefined);
      })();
      await within(closing, timeoutMs, `amqpPublisher: the connection did not close within ${timeoutMs} ms (a stalled connection?); it is left to the heartbeat`);
    },
  };

  /**
   * Forgets the connection a publish timed out on (unless another publish already did), so the
   * next publish opens a new one. Its close is not awaited: on a stalled connection it answers
   * only when the heartbeat gives up on it.
   */
  function abandon(used: Promise<AmqpConfirmChannel>): void {
    if (!connect || channel !== used) return;
    const [stalledChannel, stalledConnection] = [channel, connection];
    channel = connection = undefined;
    void stalledChannel?.then((c) => c.close()).catch(() => undefined);
    void stalledConnection?.then((c) => c.close()).catch(() => undefined);
  }

  /**
   * Stops using a channel the broker refused a publish on (unless another publish already did): the
   * next publish opens a new channel on the same connection. A quorum queue whose leader died while
   * a channel first published to it goes on refusing everything that channel publishes to it
   * (RabbitMQ 3.10, measured), while a new channel reaches the new leader at once. The old channel
   * closes once its publishes in flight have had their `timeout`.
   */
  function retire(used: Promise<AmqpConfirmChannel>): void {
    if (!connect || channel !== used) return;
    channel = undefined;
    setTimeout(() => void used.then((c) => c.close()).catch(() => undefined), timeoutMs).unref();
  }

  async function send(used: Promise<AmqpConfirmChannel>, message: OutboxDelivery): Promise<void> {
    const confirm = await used;
    const { 'content-type': contentType, ...headers } = message.headers;
    await new Promise<void>((resolve, reject) => {
      const fits = confirm.publish(
        exchange,
        message.topic,
        message.payload,
        { messageId: message.id, headers, persistent, mandatory, timestamp: Math.floor(Date.now() / 1000), ...(contentType ? { contentType } : {}) },
        (error) => {
          if (error) return reject(new Refused(error instanceof Error ? error.message : String(error), { cause: error }));
          if (returned.delete(message.id)) return reject(new Error(`unroutable: no queue is bound for routing key ${JSON.stringify(message.topic)} on exchange ${JSON.stringify(exchange)}`));
          resolve();
        },
      );
      // The confirm still arrives; `fits` only asks us to slow down, which the relay's batches do.
      void fits;
    });
  }
}

/** The broker answered a publish with a nack (or the channel closed under it). */
class Refused extends Error {
  override name = 'Refused';
}

/** A publish or close that outlived the publisher's `timeout`. */
class PublishTimeout extends Error {
  override name = 'PublishTimeout';
}

/** Resolves as `work` does, or rejects with `PublishTimeout` after `ms`; a late failure of `work` is then moot (the caller has moved on). */
function within(work: Promise<void>, ms: number, message: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new PublishTimeout(message)), ms)));
  work.catch(() => undefined);
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
