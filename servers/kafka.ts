/**
 * The Kafka broker the Kafka tests, benches and chaos runs use: TXBARRIER_KAFKA_BROKERS
 * (comma-separated host:port) when set, else servers/go/kafka-broker (franz-go's kfake, an
 * implementation of the Kafka protocol, not Apache Kafka) built by servers/go-build.sh and started
 * on a free loopback port. Its data lives in memory, so tests make faults by killing clients and
 * cutting connections, never by restarting it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { goBinary } from './index.js';

export interface KafkaBroker {
  /** `host:port` of each broker, for the client's `brokers` list. */
  readonly brokers: string[];
  /** Stops a broker this process started (closing its stdin, which the program exits on); a no-op for TXBARRIER_KAFKA_BROKERS. */
  stop(): Promise<void>;
}

/** The test broker (servers/go/kafka-broker: franz-go's kfake), built once per machine. */
export function kafkaBrokerBinary(): Promise<string> {
  return goBinary('kafka-broker', './servers/go/kafka-broker');
}

/** Builds (once per machine) and starts the test broker, or uses TXBARRIER_KAFKA_BROKERS. Rejects, saying why, when it cannot. */
export async function startKafkaBroker(options: { partitions?: number } = {}): Promise<KafkaBroker> {
  const given = process.env.TXBARRIER_KAFKA_BROKERS;
  if (given) return { brokers: given.split(','), stop: async () => undefined };
  const binary = await kafkaBrokerBinary();
  const child = spawn(binary, ['-partitions', String(options.partitions ?? 3)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = once(child, 'exit');
  const brokers = await new Promise<string[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.trim().split('\n'));
    });
    child.once('error', reject);
    void exited.then(([code]) => reject(new Error(`the Kafka test broker exited (${code}) before listening: ${stderr.trim()}`)));
  });
  return {
    brokers,
    async stop() {
      if (child.exitCode !== null) return;
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
