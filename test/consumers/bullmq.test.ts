/**
 * `txbarrier/bullmq` against the real Redis. Skipped with a message when Redis does not answer;
 * TXBARRIER_REQUIRE_BROKER=1 (CI) makes that a failure.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { type Job, Queue, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { bullmqConsumer, type SettledEvent } from '../../adapters/brokers/bullmq/consumer.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { probeBroker } from './harness.js';
import { bullmqHarness, probeRedis, REMOVAL_WAIT_MS } from './bullmq-harness.js';
import { describeConsumerSuite } from './suite.js';
import { REDIS_URL } from '../../servers/index.js';
import { deferred, waitUntil } from '../support/server-harness.js';
import { openTempDb } from '../stores/sqlite-harness.js';

const reachable = await probeBroker(`Redis (BullMQ) at ${REDIS_URL}`, 'TXBARRIER_REDIS_URL', probeRedis);

describeConsumerSuite(bullmqHarness, reachable, { reconnects: true, keepsDeadLetters: true, dedupeWindowMs: REMOVAL_WAIT_MS });

describe.skipIf(!reachable)('txbarrier/bullmq and the stalled-job limit', () => {
  it('refuses a worker whose maxStalledCount is below maxAttempts - 1, and reports a job BullMQ fails for stalling', async () => {
    const name = `q-${randomBytes(6).toString('hex')}`;
    const prefix = `txb-consumers:${name}`;
    const url = new URL(REDIS_URL);
    const connection = { host: url.hostname, port: Number(url.port || 6379) };
    const { db, dir } = openTempDb();
    const store = sqliteStore(db);
    await store.ensureSchema();
    const queue = new Queue(name, { connection, prefix });
    const workers: Worker[] = [];
    const worker = (processor: (job: Job) => Promise<unknown>, maxStalledCount: number) => {
      const w = new Worker(name, processor, { connection, prefix, autorun: false, lockDuration: 500, stalledInterval: 200, maxStalledCount });
      w.on('error', () => undefined);
      workers.push(w);
      return w;
    };
    try {
      const deadLetters: SettledEvent<Job>[] = [];
      const options = { store, consumer: 'ledger-service', handle: () => undefined, onDeadLetter: (event: SettledEvent<Job>) => deadLetters.push(event) };
      // BullMQ's default maxStalledCount (1) would fail a job after two dead workers, before five attempts.
      expect(() => bullmqConsumer(options).watch(worker(async () => undefined, 1))).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_DELIVERY_LIMIT' }));

      const id = `job-${randomBytes(6).toString('hex')}`;
      await queue.add('payment', {}, { jobId: id });
      // Two workers die while running the job (their processor never returns, and they are force-closed).
      for (let i = 1; i <= 2; i++) {
        const running = deferred<number>();
        const dying = worker((job) => (running.resolve(job.attemptsStarted), new Promise(() => undefined)), 1);
        void dying.run();
        expect(await running.promise).toBe(i);
        await dying.close(true);
      }
      // The third worker's stalled check gives up on it: BullMQ fails it without calling the processor.
      const consumer = bullmqConsumer({ ...options, maxAttempts: 2 });
      const last = worker(consumer.processor, 1);
      consumer.watch(last);
      void last.run();
      await waitUntil('reported as dead-lettered', async () => deadLetters.length === 1, { timeoutMs: 10_000 });
      expect(deadLetters[0]).toMatchObject({ messageId: id, source: [name], settlement: 'dead-letter', reason: 'attempts' });
      expect(String(deadLetters[0]!.error)).toMatch(/stalled more than allowable limit/);
      expect(await queue.getJobCounts('failed')).toEqual({ failed: 1 });
    } finally {
      for (const w of workers) await w.close(true);
      await queue.obliterate({ force: true });
      await queue.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
