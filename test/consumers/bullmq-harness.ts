import { randomBytes } from 'node:crypto';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { bullmqConsumer } from '../../adapters/brokers/bullmq/consumer.js';
import { type BrokerHarness, type BrokerRun } from './harness.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { REDIS_URL } from '../../servers/index.js';

export async function probeRedis(): Promise<void> {
  const redis = new Redis(REDIS_URL, { connectTimeout: 3000, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  try {
    await redis.connect();
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}

/** BullMQ ignores a re-added jobId while it still holds the job; the suite waits until it was removed on completion. */
export const REMOVAL_WAIT_MS = 200;

type PaymentJob = Job<{ amount: number }>;

async function run(name: string): Promise<BrokerRun> {
  const url = new URL(REDIS_URL);
  const proxy = await tcpProxy(Number(url.port || 6379), url.hostname);
  const connection = (viaProxy = false) => ({ host: url.hostname, port: viaProxy ? proxy.port : Number(url.port || 6379) });
  // The key prefix keeps this run's keys apart from every other run's.
  const prefix = `txb-consumers:${name}`;
  const queue = new Queue(name, { connection: connection(), prefix });
  const workers = new Set<Worker>();

  return {
    params: { name },
    async publish(messages) {
      for (const { id, amount } of messages) {
        await queue.add('payment', { amount }, { removeOnComplete: true, ...(id === undefined ? {} : { jobId: id }) });
      }
    },
    async consume({ ledger, effect, loseFirstAck, viaProxy, ...policy }) {
      const consumer = bullmqConsumer({
        ...policy,
        store: ledger.store,
        consumer: 'ledger-service',
        handle: async (tx, job: PaymentJob) => {
          await ledger.credit(tx, job.id!, job.data.amount);
          await effect?.(job.id!);
        },
      });
      const requeued = new Set<string>();
      const processor = loseFirstAck
        ? async (job: PaymentJob, token?: string) => {
            const settlement = await consumer.processor(job, token);
            if (requeued.has(job.id!)) return settlement;
            // The commit happened; the job goes back to be processed again instead of completing.
            requeued.add(job.id!);
            await job.moveToDelayed(Date.now(), token);
            throw Object.assign(new Error('bullmq:movedToDelayed'), { name: 'DelayedError' });
          }
        : consumer.processor;
      // Short locks, so a job whose worker died is found stalled and run again within the test.
      // As many stalls as the consumer has attempts, so BullMQ never gives up on a job first.
      const maxStalledCount = (policy.maxAttempts ?? 5) - 1;
      const worker = new Worker(name, processor, { connection: connection(viaProxy), prefix, concurrency: 8, lockDuration: 1000, stalledInterval: 500, maxStalledCount, autorun: false });
      worker.on('error', () => undefined);
      consumer.watch(worker);
      void worker.run().catch(() => undefined);
      workers.add(worker);
      return {
        async stop() {
          await consumer.stop(worker);
          workers.delete(worker);
        },
      };
    },
    dropConnections: () => proxy.drop(),
    async unsettled() {
      const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'waiting-children');
      return Object.values(counts).reduce((sum, n) => sum + n, 0);
    },
    deadLettered: async () => (await queue.getJobCounts('failed')).failed!,
    async cleanup() {
      for (const worker of workers) await worker.close(true);
      await queue.obliterate({ force: true });
      await queue.close();
      await proxy.close();
    },
  };
}

export const bullmqHarness: BrokerHarness = {
  name: 'BullMQ',
  open: () => run(`q-${randomBytes(6).toString('hex')}`),
  attach: (params) => run(params.name as string),
};
