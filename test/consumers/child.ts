/**
 * A consumer that dies between its commit and its ack: run by the consumer suite as a child
 * process. It consumes the run's queue, and the moment its first transaction has committed (the
 * store's `onOutcome` hook runs after the commit, before the consumer settles the delivery) it
 * SIGKILLs itself, so no ack (and no settlement at all) goes out.
 */
import { writeSync } from 'node:fs';
import type { BrokerHarness } from './harness.js';
import { type LedgerSpec, openLedger } from './ledger.js';

const { broker, params, ledger: spec } = JSON.parse(process.argv[2]!) as { broker: string; params: Record<string, unknown>; ledger: LedgerSpec };
const harnesses: Record<string, () => Promise<BrokerHarness>> = {
  RabbitMQ: async () => (await import('./amqp-harness.js')).amqpHarness,
  'NATS JetStream': async () => (await import('./nats-harness.js')).natsHarness,
  BullMQ: async () => (await import('./bullmq-harness.js')).bullmqHarness,
  Kafka: async () => (await import('../peers/kafka/harness.js')).kafkaHarness,
};
const run = await (await harnesses[broker]!()).attach(params);
const ledger = await openLedger(spec, {
  onOutcome: (event) => {
    if (event.outcome !== 'applied') return;
    writeSync(1, 'committed\n');
    // Synchronous: the signal lands before anything after the commit can run.
    process.kill(process.pid, 'SIGKILL');
  },
});
// The suite's policy, so the parent's clean-up knows the retry queues this declares.
await run.consume({ ledger, retryDelay: 20 });
