/**
 * The exactly-once consumer suite, run for each broker on SQLite, MariaDB and PostgreSQL against the
 * real servers: duplicate publishes, a failed transaction retried, a requeue after the commit, a
 * consumer SIGKILLed between its commit and its ack, a dropped connection, a poison message, a
 * message without an id, and a graceful stop. Effects are counted in the consumer's database.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Barrier, BarrierFailure, type OutcomeEvent } from '../../src/index.js';
import type { SettledEvent } from '../../src/messaging/consumer.js';
import type { BrokerHarness, BrokerRun, ConsumeCase, RunningConsumer, TestMessage } from './harness.js';
import { destroyLedger, type Ledger, type LedgerEngine, ledgerSpec, type LedgerSpec, openLedger } from './ledger.js';
import { deferred, waitUntil } from '../support/server-harness.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';
import { settleWarnings } from '../support/warnings.js';

export interface SuiteOptions {
  /** Whether the client reconnects by itself after its connection dropped (NATS, ioredis) or must consume again (amqplib). */
  reconnects: boolean;
  /** Whether dead-lettered messages stay on the broker, countable (not JetStream's `term`). */
  keepsDeadLetters: boolean;
  /** How long the broker drops a republished id by itself (JetStream's duplicate window); wait it out to test the barrier. */
  dedupeWindowMs?: number;
}

const ENGINES: LedgerEngine[] = ['sqlite', 'mysql', 'postgres'];
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function describeConsumerSuite(harness: BrokerHarness, reachable: boolean, suite: SuiteOptions): void {
  for (const engine of ENGINES) {
    const skip = !reachable || (engine !== 'sqlite' && !hasServer(engine));
    describe.skipIf(skip)(`exactly-once consumer: ${harness.name} on ${engine}`, () => {
      let spec: LedgerSpec;
      let ledger: Ledger;
      const outcomes: OutcomeEvent[] = [];
      beforeAll(async () => {
        spec = ledgerSpec(engine, { mysql: MYSQL_URL, postgres: POSTGRES_URL });
        ledger = await openLedger(spec, { onOutcome: (event) => outcomes.push(event) });
      });
      afterAll(async () => {
        await ledger?.close();
        if (spec) await destroyLedger(spec);
      });

      /** A fresh queue/stream, its consumers, and what they settled; everything removed afterwards. */
      async function withRun(test: (t: RunContext) => Promise<void>) {
        const run = await harness.open();
        const consumers: RunningConsumer[] = [];
        const settled: SettledEvent<unknown>[] = [];
        outcomes.length = 0;
        const context: RunContext = {
          run,
          settled,
          consume: async (options = {}) => {
            const consumer = await run.consume({
              ledger,
              retryDelay: 20,
              ...options,
              onSettled: (event) => {
                settled.push(event);
                options.onSettled?.(event);
              },
            });
            consumers.push(consumer);
            return consumer;
          },
          count: (settlement, ids) => settled.filter((e) => e.settlement === settlement && (!ids || ids.includes(e.messageId!))).length,
        };
        try {
          await test(context);
        } finally {
          for (const consumer of consumers) await consumer.stop().catch(() => undefined);
          await run.cleanup();
        }
      }

      async function expectOnce(messages: TestMessage[]) {
        const rows = await ledger.rows();
        for (const { id } of messages) expect(rows.get(id!), id).toBe(1);
      }

      it('applies a message published twice once', () =>
        withRun(async ({ run, consume, count }) => {
          const messages = messagesOf(6);
          await consume();
          await run.publish(messages);
          await waitUntil('every message applied', async () => count('applied') === messages.length);
          await sleep(suite.dedupeWindowMs ?? 0);
          // A publisher retrying after a lost confirm, past any deduplication of the broker's own.
          const again = messages.slice(0, 3);
          await run.publish(again);
          await waitUntil('the copies settled', async () => count('duplicate') === again.length);
          await expectOnce(messages);
          expect(outcomes.filter((e) => e.outcome === 'applied')).toHaveLength(messages.length);
        }));

      it('rolls a failed transaction back and applies it on a later, delayed delivery', () =>
        withRun(async ({ run, consume, count, settled }) => {
          const messages = messagesOf(4);
          const failOnce = new Set(messages.slice(0, 2).map((m) => m.id!));
          await consume({
            retryDelay: 100,
            effect: (id) => {
              // The ledger row is written, then the transaction fails: both must roll back.
              if (failOnce.delete(id)) throw new Error(`transient failure of ${id}`);
            },
          });
          await run.publish(messages);
          await waitUntil('every message applied', async () => count('applied') === messages.length);
          await expectOnce(messages);
          const retries = settled.filter((e) => e.settlement === 'retry');
          expect(retries.map((e) => e.messageId).sort()).toEqual(messages.slice(0, 2).map((m) => m.id).sort());
          for (const retry of retries) {
            expect(retry).toMatchObject({ attempt: 1, retryDelayMs: 100 });
            expect(String(retry.error)).toMatch(/transient failure/);
            const applied = settled.find((e) => e.settlement === 'applied' && e.messageId === retry.messageId)!;
            expect(applied.attempt).toBe(2);
            expect(settled.indexOf(applied)).toBeGreaterThan(settled.indexOf(retry));
          }
          expect(outcomes.filter((e) => e.outcome === 'error')).toHaveLength(2);
        }));

      it('recognises a message requeued after its commit', () =>
        withRun(async ({ run, consume, count }) => {
          const messages = messagesOf(5);
          await consume({ loseFirstAck: true });
          await run.publish(messages);
          await waitUntil('every requeued copy recognised', async () => count('duplicate') === messages.length);
          await expectOnce(messages);
          expect(count('applied')).toBe(messages.length);
        }));

      it('applies once the message of a consumer SIGKILLed between its commit and its ack', () =>
        withRun(async ({ run, consume, settled }) => {
          const messages = messagesOf(4);
          await run.publish(messages);
          const { signal, stdout } = await runChild(harness, run, spec);
          expect(stdout).toContain('committed');
          expect(signal).toBe('SIGKILL');
          const rows = await ledger.rows();
          const committed = messages.map((m) => m.id!).filter((id) => rows.has(id));
          expect(committed.length).toBeGreaterThan(0);

          await consume();
          const done = () => new Set(settled.filter((e) => e.settlement === 'applied' || e.settlement === 'duplicate').map((e) => e.messageId));
          await waitUntil('the replacement settled every message', async () => done().size === messages.length, { timeoutMs: 15_000 });
          await expectOnce(messages);
          for (const id of committed) expect(settled.find((e) => e.messageId === id)?.settlement, id).toBe('duplicate');
        }));

      it('applies once across a dropped broker connection', () =>
        withRun(async ({ run, consume, count, settled }) => {
          const messages = messagesOf(20);
          let consumer = await consume({ viaProxy: true, effect: () => sleep(10) });
          await run.publish(messages);
          await waitUntil('some messages applied', async () => count('applied') >= 3);
          run.dropConnections();
          if (!suite.reconnects) {
            // amqplib does not reconnect: consume again, as the service's supervisor would.
            await consumer.stop().catch(() => undefined);
            consumer = await consume({ viaProxy: true });
          }
          const done = () => new Set(settled.filter((e) => e.settlement === 'applied' || e.settlement === 'duplicate').map((e) => e.messageId));
          await waitUntil('every message settled', async () => done().size === messages.length, { timeoutMs: 20_000 });
          await expectOnce(messages);
          // A settlement lost with the connection comes back (BullMQ: once its lock expired, found by the running worker).
          await waitUntil('nothing left on the broker', async () => (await run.unsettled()) === 0, { timeoutMs: 15_000 });
          await consumer.stop();
          await expectOnce(messages);
          // What the drop cost is reported, never dropped silently: settlements and cancels the broker refused.
          for (const warning of await settleWarnings()) {
            expect(warning).toMatch(/^TxbarrierConsumerWarning: txbarrier consumer: (the broker refused the \w+ settlement|cancelling the consumer|channel error|the channel of)/);
          }
        }));

      it('dead-letters a poison message after its attempts, and a BarrierFailure at once, with the hook', () =>
        withRun(async ({ run, consume }) => {
          const [poison, failing, good] = messagesOf(3);
          const deadLetters: SettledEvent<unknown>[] = [];
          const consumer = await consume({
            maxAttempts: 3,
            onDeadLetter: (event) => deadLetters.push(event),
            effect: (id) => {
              if (id === poison!.id) throw new Error('poison');
              if (id === failing!.id) throw new BarrierFailure('can never apply');
            },
          });
          await run.publish([poison!, failing!, good!]);
          await waitUntil('both dead-lettered', async () => deadLetters.length === 2);
          expect(deadLetters.find((e) => e.messageId === poison!.id)).toMatchObject({ reason: 'attempts', attempt: 3 });
          expect(deadLetters.find((e) => e.messageId === failing!.id)).toMatchObject({ reason: 'failure', attempt: 1 });
          await waitUntil('the good one applied', async () => (await ledger.rows()).has(good!.id!));
          const rows = await ledger.rows();
          expect([rows.has(poison!.id!), rows.has(failing!.id!)]).toEqual([false, false]);
          await consumer.stop();
          expect(await run.deadLettered()).toBe(suite.keepsDeadLetters ? 2 : 0);
          // A settlement other than an ack may be fire-and-forget (JetStream's `term`), and Kafka commits the
          // offset past a dead letter asynchronously: give the broker a moment (seen over 5 s at load 23).
          await waitUntil('nothing left on the broker', async () => (await run.unsettled()) === 0, { timeoutMs: 15_000, intervalMs: 50 });
        }));

      it('dead-letters a message without an id, writing nothing', () =>
        withRun(async ({ run, consume }) => {
          const deadLetters: SettledEvent<unknown>[] = [];
          const consumer = await consume({ onDeadLetter: (event) => deadLetters.push(event) });
          await run.publish([{ amount: 7 }]);
          await waitUntil('dead-lettered', async () => deadLetters.length === 1);
          expect(deadLetters[0]).toMatchObject({ reason: 'no-id', messageId: undefined, attempt: 1 });
          expect((deadLetters[0]!.error as { code?: string }).code).toBe('ERR_TXBARRIER_MESSAGE_ID');
          expect(outcomes).toEqual([]);
          await consumer.stop();
          expect(await run.deadLettered()).toBe(suite.keepsDeadLetters ? 1 : 0);
          // A settlement other than an ack may be fire-and-forget (JetStream's `term`), and Kafka commits the
          // offset past a dead letter asynchronously: give the broker a moment (seen over 5 s at load 23).
          await waitUntil('nothing left on the broker', async () => (await run.unsettled()) === 0, { timeoutMs: 15_000, intervalMs: 50 });
        }));

      it('keeps two sources of one consumer apart: the same id on two queues applies on each', () =>
        withRun(async ({ run, consume, count, settled }) => {
          const other = await harness.open();
          try {
            const [payment] = messagesOf(1);
            await consume();
            const second = await other.consume({ ledger, retryDelay: 20, onSettled: (event) => settled.push(event) });
            await run.publish([payment!]);
            // A refund whose id equals the payment's: a message of its own, from another queue.
            await other.publish([{ id: payment!.id, amount: 99 }]);
            await waitUntil('applied from both sources', async () => count('applied') === 2);
            expect((await ledger.rows()).get(payment!.id!)).toBe(2);
            expect(new Set(settled.map((e) => JSON.stringify(e.source))).size).toBe(2);
            expect(count('duplicate')).toBe(0);
            await second.stop();
          } finally {
            await other.cleanup();
          }
        }));

      it('recognises a message committed under the source-less key, unless legacyKeyCheck is off', () =>
        withRun(async ({ run, consume, count }) => {
          const [old, oldUnchecked, fresh] = messagesOf(3);
          // The rows and the effect exactly as the consumers before the source was in the key committed them.
          for (const message of [old!, oldUnchecked!]) {
            const result = await Barrier.from({ transType: 'saga', gid: message.id!, branchId: 'ledger-service', op: 'action' }).call(ledger.store, (tx) =>
              ledger.credit(tx, message.id!, message.amount),
            );
            expect(result.outcome).toBe('applied');
          }
          const checking = await consume();
          await run.publish([old!, fresh!]);
          await waitUntil('both settled', async () => count('duplicate', [old!.id!]) === 1 && count('applied', [fresh!.id!]) === 1);
          await checking.stop();
          await expectOnce([old!, fresh!]);

          // Without the check, the redelivery of a message committed before the upgrade applies again.
          await consume({ legacyKeyCheck: false });
          await run.publish([oldUnchecked!]);
          await waitUntil('applied again', async () => count('applied', [oldUnchecked!.id!]) === 1);
          expect((await ledger.rows()).get(oldUnchecked!.id!)).toBe(2);
        }));

      it('waits for a source-less consumer still running the same message (a rolling deploy), then recognises it', () =>
        withRun(async ({ run, consume, count }) => {
          const [message] = messagesOf(1);
          const entered = deferred();
          const gate = deferred();
          const older = Barrier.from({ transType: 'saga', gid: message!.id!, branchId: 'ledger-service', op: 'action' }).call(ledger.store, async (tx) => {
            await ledger.credit(tx, message!.id!, message!.amount);
            entered.resolve();
            await gate.promise;
          });
          await entered.promise;
          await consume();
          await run.publish([message!]);
          // The new consumer's delivery waits on the older one's uncommitted row (or times out and retries).
          await sleep(500);
          expect(count('applied') + count('duplicate')).toBe(0);
          gate.resolve();
          expect((await older).outcome).toBe('applied');
          await waitUntil('recognised', async () => count('duplicate', [message!.id!]) === 1, { timeoutMs: 10_000 });
          expect(count('applied')).toBe(0);
          await expectOnce([message!]);
        }));

      it('stops gracefully: waits for the transaction in flight, and gives up at its deadline', () =>
        withRun(async ({ run, consume, count }) => {
          const [slow, stuck] = messagesOf(2);
          const entered = deferred<string>();
          const gate = deferred();
          const consumer = await consume({
            shutdownTimeout: 5000,
            effect: async (id) => {
              entered.resolve(id);
              await gate.promise;
            },
          });
          await run.publish([slow!]);
          expect(await entered.promise).toBe(slow!.id);
          let stopped = false;
          const stopping = consumer.stop().then(() => (stopped = true));
          await sleep(100);
          expect(stopped).toBe(false);
          gate.resolve();
          await stopping;
          expect(count('applied')).toBe(1);
          await expectOnce([slow!]);

          const stuckEntered = deferred();
          const second = await consume({
            shutdownTimeout: 100,
            effect: async () => {
              stuckEntered.resolve();
              await sleep(1000);
            },
          });
          await run.publish([stuck!]);
          await stuckEntered.promise;
          await expect(second.stop()).rejects.toMatchObject({ code: 'ERR_TXBARRIER_SHUTDOWN_TIMEOUT' });
          await sleep(1000);
          await expectOnce([stuck!]);
        }));
    });
  }
}

interface RunContext {
  run: BrokerRun;
  settled: SettledEvent<unknown>[];
  consume(options?: Partial<Omit<ConsumeCase, 'ledger'>>): Promise<RunningConsumer>;
  count(settlement: SettledEvent<unknown>['settlement'], ids?: string[]): number;
}

function messagesOf(count: number): TestMessage[] {
  return Array.from({ length: count }, (_, i) => ({ id: `message-${randomUUID()}`, amount: i + 1 }));
}

/** Runs test/consumers/child.ts, which consumes, commits, and SIGKILLs itself before the ack. */
function runChild(harness: BrokerHarness, run: BrokerRun, spec: LedgerSpec): Promise<{ signal: NodeJS.Signals | null; stdout: string }> {
  const args = JSON.stringify({ broker: harness.name, params: run.params, ledger: spec });
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'test/consumers/child.ts', args], { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error && !('signal' in error && error.signal === 'SIGKILL')) console.error(stderr);
      resolve({ signal: (error as { signal?: NodeJS.Signals } | null)?.signal ?? null, stdout });
    });
  });
}
