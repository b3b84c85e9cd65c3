/**
 * What the consumer suite asks of each broker: publish, consume into a ledger, drop the connection,
 * count what is left. One harness per broker; no vitest here, so a child process can use it too.
 */
import type { SettledEvent } from '../../src/messaging/consumer.js';
import type { Ledger } from './ledger.js';

export interface TestMessage {
  /** Published without an id when absent. */
  id?: string;
  amount: number;
}

export interface ConsumeCase {
  ledger: Ledger;
  maxAttempts?: number;
  retryDelay?: number;
  shutdownTimeout?: number;
  /** Runs inside the transaction after the ledger row is written; a throw rolls both back. */
  effect?: (id: string) => Promise<void> | void;
  /** Each first ack becomes a requeue (nack, nak, a move back to the queue): a redelivery after the commit. */
  loseFirstAck?: boolean;
  /** Whether to recognise messages committed under the source-less key; the consumer's default when absent. */
  legacyKeyCheck?: boolean;
  /** Connect through the run's proxy, so `dropConnections` cuts this consumer off. */
  viaProxy?: boolean;
  onSettled?: (event: SettledEvent<unknown>) => void;
  onDeadLetter?: (event: SettledEvent<unknown>) => void;
}

export interface RunningConsumer {
  /** Stops the consumer (gracefully) and closes its connection. */
  stop(): Promise<void>;
}

export interface BrokerRun {
  /** JSON-safe names a child process passes to `attach`. */
  readonly params: Record<string, unknown>;
  /** Publishes in order; resolves once the broker holds every message. */
  publish(messages: TestMessage[]): Promise<void>;
  consume(options: ConsumeCase): Promise<RunningConsumer>;
  /** Cuts every connection made through the proxy, as a network failure would. */
  dropConnections(): void;
  /** Messages still waiting for the consumer (stop the consumers first: counts ready messages). */
  unsettled(): Promise<number>;
  /** Messages the broker holds as dead-lettered (0 where the broker keeps none: JetStream's `term`). */
  deadLettered(): Promise<number>;
  cleanup(): Promise<void>;
}

export interface BrokerHarness {
  readonly name: string;
  /** A fresh queue/stream/key prefix of its own. */
  open(): Promise<BrokerRun>;
  /** The run another process opened. */
  attach(params: Record<string, unknown>): Promise<BrokerRun>;
}

/**
 * Fails under TXBARRIER_REQUIRE_BROKER=1 when the broker is unreachable; otherwise skips, saying so.
 * Resolves to whether the broker answered.
 */
export async function probeBroker(what: string, variable: string, probe: () => Promise<void>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (error) {
    const problem = `${what} (${error instanceof Error ? error.message : String(error)}); set ${variable} to test it`;
    if (process.env.TXBARRIER_REQUIRE_BROKER === '1') throw new Error(`TXBARRIER_REQUIRE_BROKER=1 but the broker is unreachable: ${problem}`);
    console.warn(`\ntxbarrier: SKIPPING the consumer tests of ${problem}\n`);
    return false;
  }
}

export const payload = (message: TestMessage) => Buffer.from(JSON.stringify({ amount: message.amount }));
export const amountOf = (content: Uint8Array | string) => (JSON.parse(Buffer.from(content).toString()) as { amount: number }).amount;
