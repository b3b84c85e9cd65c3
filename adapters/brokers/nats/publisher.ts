import type { OutboxDelivery, OutboxPublisher } from '../../../src/messaging/outbox/index.js';

/** The part of a nats.js `JetStreamClient` (`nc.jetstream()`) the publisher uses (nats is never imported here). */
export interface NatsJetStream {
  publish(
    subject: string,
    payload?: Uint8Array,
    options?: { msgID?: string; timeout?: number; headers?: NatsHeaders },
  ): Promise<{ stream: string; seq: number; duplicate: boolean }>;
}

/** nats.js `MsgHdrs`, as far as the publisher fills them. */
export interface NatsHeaders {
  set(name: string, value: string): void;
}

export interface NatsPublisherOptions {
  /** `nc.jetstream()`. The nats.js connection reconnects by itself; publishes fail (and are retried) meanwhile. Required. */
  jetstream: NatsJetStream;
  /** How long to wait for a stream's acknowledgement: ms. Defaults to `5000`. */
  timeout?: number;
}

type HeadersFactory = () => NatsHeaders;
let makeHeaders: Promise<HeadersFactory> | undefined;

/**
 * An outbox publisher for NATS JetStream: a message counts as sent once a stream acknowledged it.
 * Its id goes out as JetStream's `Nats-Msg-Id`, so the stream itself drops a message a relay
 * publishes twice within the stream's duplicate window (a relay that died between publishing and
 * recording), and an exactly-once consumer keys its barrier on the same id.
 * A subject no stream captures fails ("no responders"), and is retried, then parked.
 */
export function natsPublisher(options: NatsPublisherOptions): OutboxPublisher {
  const { jetstream, timeout = 5000 } = options;
  return {
    system: 'nats',
    async publish(message: OutboxDelivery) {
      const entries = Object.entries(message.headers);
      let headers: NatsHeaders | undefined;
      if (entries.length > 0) {
        // nats' headers() is the one thing needed from the package, loaded with the first message that has any.
        makeHeaders ??= import('nats').then((nats) => (nats as unknown as { headers: HeadersFactory }).headers);
        headers = (await makeHeaders)();
        for (const [name, value] of entries) headers.set(name, value);
      }
      await jetstream.publish(message.topic, message.payload, { msgID: message.id, timeout, ...(headers ? { headers } : {}) });
    },
  };
}
