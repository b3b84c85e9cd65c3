/**
 * What the two drain workers share, and none of it txbarrier: their arguments, the IPC loop that
 * answers the parent's `drain` commands with the messages published and the per-thread CPU spent,
 * and the raw broker connections. `drain-hand.ts` and `drain-relay.ts` each add one way of draining.
 */
import { threadCpuSince, threadTimes, type WorkerEngine } from './worker-common.js';

export type DrainBroker = 'amqp' | 'nats';

/** A drain worker's setup, as the parent passes it (JSON in argv[2]). */
export interface DrainArgs {
  engine: WorkerEngine;
  /** Always 1: the CostWorker's label reads it. Each drainer is one process with one claim loop. */
  clients: 1;
  broker: DrainBroker;
  /** Server URL, or the SQLite file. */
  target: string;
  /** The outbox table (already created and filled by the parent). */
  table: string;
  brokerUrl: string;
  /** Messages claimed per round, as the relay's `batchSize`. */
  batchSize: number;
}

export type DrainCommand = { type: 'drain' } | { type: 'exit' };

export interface DrainResult {
  /** Messages this process published and recorded as sent. */
  messages: number;
  /** Claims that returned rows. */
  claims: number;
  /** Publishes that failed (the relay retries them; the hand-written drainer stops at one). */
  failures: number;
  /** From the command to the claim that found nothing. */
  seconds: number;
  mainMicros: number;
  backgroundMicros: number;
}

/** Drains the outbox until a claim finds nothing; resolves to what it published. */
export type Drainer = () => Promise<Pick<DrainResult, 'messages' | 'claims' | 'failures'>>;

/**
 * A drain worker: builds its drainer once (connections opened), then answers each `drain` with a
 * DrainResult. Warm-ups are drains the parent does not count.
 */
export async function drainWorkerMain(makeDrainer: (args: DrainArgs) => Promise<{ drain: Drainer; close(): Promise<void> }>): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as DrainArgs;
  const drainer = await makeDrainer(args);
  process.on('message', async (command: DrainCommand) => {
    try {
      if (command.type === 'exit') {
        await drainer.close();
        process.disconnect();
        return;
      }
      const before = threadTimes();
      const start = performance.now();
      const drained = await drainer.drain();
      const seconds = (performance.now() - start) / 1000;
      const cpu = threadCpuSince(before);
      process.send!({ ...drained, seconds, mainMicros: cpu.main, backgroundMicros: cpu.background } satisfies DrainResult);
    } catch (error) {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}${error instanceof Error && error.cause ? `\ncause: ${String(error.cause)}` : ''}\n`);
      process.exit(1);
    }
  });
  // A parent that died (or was stopped) leaves nothing running.
  process.on('disconnect', () => process.exit(0));
  process.send!('ready');
}
