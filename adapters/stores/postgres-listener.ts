import type { OutboxListener } from '../../src/messaging/outbox/index.js';

/** The part of a pg client the listener uses (pg is never imported here). */
export interface PostgresListenClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  /** A pool client's; `true` destroys it. */
  release?(destroy?: boolean): void;
  /** A standalone `Client`'s. */
  end?(): Promise<void>;
}

export interface PostgresListenerOptions {
  /** How long to wait before listening again after the connection was lost: ms. Defaults to `1000`. */
  reconnectDelay?: number;
  /** Told when the connection was lost (the relay polls meanwhile). Defaults to a process warning. */
  onError?: (error: unknown) => void;
}

/**
 * Wakes relays with PostgreSQL's LISTEN/NOTIFY: give it as the relay's `listen` option. It holds
 * one connection of `pool` (a pg `Pool`, or anything whose `connect()` resolves to a connected
 * client) for as long as the relay runs; a lost connection is replaced, and the relay is woken
 * once it is, for any notification missed in between.
 */
export function postgresListener(pool: { connect(): Promise<PostgresListenClient> }, options: PostgresListenerOptions = {}): OutboxListener {
  const { reconnectDelay = 1000, onError = (error: unknown) => process.emitWarning(`txbarrier outbox: LISTEN connection lost: ${String(error)}`, 'TxbarrierOutboxWarning') } = options;
  return async (channel, onNotify) => {
    const quoted = `"${channel.replaceAll('"', '""')}"`;
    let client: PostgresListenClient | undefined;
    let stopped = false;
    let retry: NodeJS.Timeout | undefined;

    const listen = async (): Promise<void> => {
      const opened = await pool.connect();
      let lost = false;
      // pg reports a server that ended the session as 'error' and then 'end', or only 'end'.
      const onLost = (error: unknown) => {
        if (lost || stopped) return;
        lost = true;
        if (client === opened) client = undefined;
        try {
          opened.release?.(true);
        } catch {
          // pg-pool already dropped the client when it ended.
        }
        onError(error);
        reconnectLater();
      };
      opened.on('error', onLost);
      opened.on('end', () => onLost(new Error('the LISTEN connection ended')));
      opened.on('notification', (message) => {
        if (message.channel === channel) onNotify();
      });
      await opened.query(`LISTEN ${quoted}`);
      client = opened;
    };
    // Once listening again, wake the relay for whatever was notified while nobody listened.
    const reconnectLater = () => {
      if (!stopped) retry = setTimeout(() => void listen().then(onNotify, failed), reconnectDelay);
    };
    const failed = (error: unknown) => {
      onError(error);
      reconnectLater();
    };

    await listen();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const open = client;
      client = undefined;
      if (!open) return;
      await open.query(`UNLISTEN ${quoted}`).catch(() => undefined);
      if (open.release) open.release();
      else await open.end?.();
    };
  };
}
