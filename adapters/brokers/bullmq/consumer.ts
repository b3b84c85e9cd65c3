/**
 * `txbarrier/bullmq`: an exactly-once BullMQ processor. Give it to a `Worker`; it runs each job's
 * effect in a local transaction with a barrier row keyed by the job id, the consumer's name and the queue's,
 * and resolves only after the commit, so BullMQ completes the job after it. A job processed again
 * (stalled after its worker died, or re-added once the first was removed) is completed without
 * running.
 *
 * The retry policy is the consumer's, not the job's `attempts`/`backoff` options: a failed job is
 * moved to the delayed set (`moveToDelayed` + BullMQ's `DelayedError`), and a dead-lettered one
 * fails at once (BullMQ's `UnrecoverableError`), whatever `attempts` it was added with. BullMQ keeps
 * failed jobs (unless `removeOnFail`): that is the dead-letter queue.
 *
 * BullMQ carries trace context by its own `telemetry` option rather than in headers, so this
 * adapter reads none.
 */
import { BarrierConsumerConfigError, type ConsumerOptions, type Decision, messageConsumer, type Settlement } from '../../../src/messaging/consumer.js';

export * from '../consumer-exports.js';

/** The part of a BullMQ `Job` the processor uses (the library is never imported here). */
export interface BullmqJob {
  readonly id?: string | undefined;
  /** The queue's name (without the Redis prefix): the job's source in its barrier key. */
  readonly queueName: string;
  /** How many times the job was moved to active: 1 on its first run, more after a delay or a stall. */
  readonly attemptsStarted: number;
  moveToDelayed(timestamp: number, token?: string): Promise<void>;
}

/** The part of a BullMQ `Worker` that `stop` uses. */
export interface BullmqWorker {
  close(force?: boolean): Promise<void>;
}

/** The part of a BullMQ `Worker` that `watch` uses. */
export interface BullmqWatchedWorker<J extends BullmqJob> extends BullmqWorker {
  readonly opts: { readonly maxStalledCount?: number };
  on(event: 'failed', listener: (job: J | undefined, error: Error, prev: string) => void): unknown;
}

export interface BullmqConsumerOptions<Tx, J extends BullmqJob> extends ConsumerOptions<Tx, J> {
  /**
   * Reads the job's id, the barrier's gid. Defaults to `job.id` when the producer chose it
   * (`queue.add(name, data, { jobId })`, kept across its own retries). BullMQ's generated ids are
   * counters, which restart with an emptied Redis and differ between two adds of the same message,
   * so a job without a `jobId` of its own (a purely numeric id: BullMQ refuses custom integer ids)
   * is dead-lettered instead.
   */
  messageId?: (job: J) => unknown;
}

export interface BullmqConsumer<J extends BullmqJob> {
  /** The processor: `new Worker(queueName, consumer.processor, options)`. Resolves to `applied` or `duplicate`. */
  readonly processor: (job: J, token?: string) => Promise<Settlement>;
  /**
   * Closes `worker` gracefully (it takes no more jobs and waits for the running ones), and at
   * `shutdownTimeout` force-closes it and rejects with `ERR_TXBARRIER_SHUTDOWN_TIMEOUT`; a job
   * cut off there stalls and is processed again, and the barrier recognises it if it committed.
   */
  stop(worker: BullmqWorker): Promise<void>;
  /**
   * Checks the worker that runs `processor` and listens to it. BullMQ fails a job whose worker
   * died mid-run more than `maxStalledCount` times (its default is 1) without calling the
   * processor, so with fewer than `maxAttempts - 1` a job could be given up on before its attempts
   * are spent: `watch` refuses such a worker with `ERR_TXBARRIER_DELIVERY_LIMIT` (raise
   * `maxStalledCount`, or lower `maxAttempts`). A job BullMQ does fail that way (one that kills
   * every worker that runs it) is reported to `onSettled`, `onDeadLetter` and the logger as
   * dead-lettered for `attempts`. Call it once, before the worker takes jobs (`autorun: false`,
   * then `worker.run()`).
   */
  watch(worker: BullmqWatchedWorker<J>): void;
}

/** BullMQ's failure text for a job that stalled more than `maxStalledCount` times. */
const STALLED_LIMIT = /stalled more than allowable limit/;
/** BullMQ's default `maxStalledCount`. */
const BULLMQ_MAX_STALLED = 1;
/** A job carries no headers (no trace context). */
const NO_HEADER = () => undefined;

/**
 * An exactly-once processor for a BullMQ worker. `BarrierFailure`, a job without a usable id and a
 * job failing `maxAttempts` runs fail for good (the `onDeadLetter` hook hears of each); any other
 * error rolls back and the job is delayed, waiting longer each time. `onSettled` fires when the
 * processor hands its result to the worker, just before BullMQ records it.
 */
export function bullmqConsumer<Tx, J extends BullmqJob>(options: BullmqConsumerOptions<Tx, J>): BullmqConsumer<J> {
  const { messageId = (job: J) => (job.id === undefined || /^\d+$/.test(job.id) ? undefined : job.id) } = options;
  const core = messageConsumer(options);
  let watched = false;

  const processor = async (job: J, token?: string): Promise<Settlement> => {
    if (!watched) {
      watched = true;
      core.warn('bullmqConsumer: call consumer.watch(worker) before the worker runs, so a stalled-job limit below maxAttempts is refused and jobs BullMQ fails by it are reported');
    }
    let decided: Decision | undefined;
    let moveError: unknown;
    // Not async: only a retry or a release has anything to await (the core awaits only a promise).
    const settlement = await core.deliver({ message: job, id: messageId(job), source: [job.queueName], attempt: Math.max(1, job.attemptsStarted), header: NO_HEADER }, (decision) => {
      decided = decision;
      if (decision.settlement !== 'retry' && decision.settlement !== 'released') return;
      const failed = (error: unknown): never => {
        moveError = error;
        throw error;
      };
      try {
        return job.moveToDelayed(Date.now() + (decision.settlement === 'retry' ? decision.delayMs : 0), token).catch(failed);
      } catch (error) {
        return failed(error);
      }
    });
    // Not delayed after all (Redis unreachable, say): fail the run; if the worker cannot record that either, the job stalls and comes again.
    if (moveError !== undefined) throw moveError;
    switch (decided!.settlement) {
      case 'retry':
      case 'released':
        // BullMQ recognises its errors by name, so the class need not be imported.
        throw Object.assign(new Error('bullmq:movedToDelayed'), { name: 'DelayedError' });
      case 'dead-letter': {
        const { reason, error } = decided!;
        throw Object.assign(new Error(`txbarrier: dead-lettered (${reason}): ${error instanceof Error ? error.message : String(error)}`, { cause: error }), {
          name: 'UnrecoverableError',
        });
      }
      default:
        return settlement;
    }
  };

  return {
    processor,
    watch: (worker) => {
      const maxStalled = worker.opts.maxStalledCount ?? BULLMQ_MAX_STALLED;
      if (maxStalled < core.policy.maxAttempts - 1) {
        throw new BarrierConsumerConfigError(
          'ERR_TXBARRIER_DELIVERY_LIMIT',
          `the worker has maxStalledCount ${maxStalled} < maxAttempts ${core.policy.maxAttempts} - 1: BullMQ would fail a job whose runs keep stalling ` +
            'before the consumer spends its attempts, without calling the processor. Raise maxStalledCount, or lower maxAttempts.',
        );
      }
      watched = true;
      worker.on('failed', (job, error) => {
        if (!job || !STALLED_LIMIT.test(error?.message ?? '')) return;
        core.deadLetteredByBroker({ message: job, id: messageId(job), source: [job.queueName], attempt: Math.max(1, job.attemptsStarted) }, error);
      });
    },
    stop: async (worker) => {
      const closing = worker.close();
      closing.catch(() => undefined);
      try {
        await Promise.all([closing, core.drain()]);
      } catch (error) {
        await worker.close(true);
        throw error;
      }
    },
  };
}
