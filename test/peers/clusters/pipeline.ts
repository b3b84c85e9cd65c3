/**
 * The cluster run, the same for RabbitMQ and NATS JetStream, on PostgreSQL: a producer commits
 * orders and enqueues their messages in one transaction (every seventh rolls back), the outbox
 * relay publishes them to a replicated queue/stream of a three-node cluster, and the exactly-once
 * consumer applies each into a ledger with the barrier. Mid-stream the queue's/stream's leader is
 * SIGKILLed, the run goes on without it (the relay and the consumer move to a live node by
 * themselves), then the node starts again and rejoins. Just before the first kill the replies on
 * the relay's connection are cut, so publishes reach the leader but their confirms are lost: the
 * relay retries them on another node and the consumer gets the copies.
 *
 * The check: every committed message applied exactly once, or dead-lettered and reported; nothing
 * rolled back published or applied; nothing parked; nothing left on the broker.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { postgresListener } from '../../../adapters/stores/postgres-listener.js';
import { postgresStore } from '../../../adapters/stores/postgres.js';
import type { SettledEvent } from '../../../src/messaging/consumer.js';
import { createOutbox, createRelay, type OutboxPublisher, type RelayEvent } from '../../../src/messaging/outbox/index.js';
import type { BarrierStore } from '../../../src/index.js';
import { destroyLedger, ledgerSpec, openLedger } from '../../consumers/ledger.js';
import { postgresPool, waitUntil } from '../../support/server-harness.js';
import { hasServer } from '../../support/servers.js';
import type { ClusterMember } from '../../../servers/guarded.js';
import { MYSQL_URL, POSTGRES_URL } from '../../../servers/index.js';

/** What the run asks of each broker's cluster, with a fresh queue/stream declared. */
export interface ClusterBroker {
  readonly name: string;
  /** Where the producer enqueues: the queue, or a subject the stream captures. */
  readonly topic: string;
  /** The node leading the queue/stream now. */
  leader(): Promise<ClusterMember>;
  /** The relay's publisher, connected to the leader first through a proxy whose replies `loseConfirms` cuts. */
  publisher(): OutboxPublisher;
  /** Cuts what the broker sends on the relay's connection (its publishes still arrive). */
  loseConfirms(): void;
  /** Starts the consumer on the cluster, connected to the leader first. */
  consume(options: ConsumeOptions): Promise<{ stop(): Promise<void> }>;
  /** Messages the broker still holds for the consumer: waiting, and (JetStream; RabbitMQ once the consumer stopped) unacked. */
  unsettled(): Promise<number>;
  close(): Promise<void>;
}

export interface ConsumeOptions {
  store: BarrierStore<unknown>;
  consumer: string;
  /** Applies the message with this id inside the barrier's transaction. */
  apply(tx: unknown, id: string): Promise<void>;
  onSettled(event: SettledEvent<unknown>): void;
  /** The consumer's warnings (connections lost, settlements refused): expected here, and counted. */
  logger: { warn(fields: unknown, message: string): void };
}

/** `npm run test:clusters:long` (TXBARRIER_CLUSTERS_LONG=1): more messages and three leader kills per broker instead of one. */
const SIZE = process.env.TXBARRIER_CLUSTERS_LONG === '1' ? { transactions: 1200, kills: 3 } : { transactions: 300, kills: 1 };

export interface PipelineReport {
  committed: number;
  rolledBack: number;
  applied: number;
  duplicates: number;
  deadLettered: number;
  relayRetries: number;
  consumerWarnings: number;
  kills: { node: string; downMs: number; publishedWhileDown: number; appliedWhileDown: number }[];
  durationMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs the pipeline on `broker`, checks it, prints its figures, and closes the broker's side. */
export async function runPipeline(broker: ClusterBroker): Promise<PipelineReport> {
  try {
    const report = await run(broker, SIZE);
    console.log(`${broker.name} cluster: ${JSON.stringify(report)}`);
    expect(report.kills).toHaveLength(SIZE.kills);
    // The publishes whose confirms were cut: retried, and their copies recognised.
    expect(report.relayRetries).toBeGreaterThan(0);
    expect(report.duplicates).toBeGreaterThan(0);
    return report;
  } finally {
    await broker.close();
  }
}

async function run(broker: ClusterBroker, options: typeof SIZE): Promise<PipelineReport> {
  if (!hasServer('postgres')) throw new Error('the cluster suite runs on PostgreSQL, which the global setup did not reach (TXBARRIER_POSTGRES_URL)');
  const started = Date.now();
  const pool = postgresPool();
  const listenPool = postgresPool({ max: 1 });
  const table = `cluster_outbox_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const outbox = createOutbox(postgresStore(pool) as BarrierStore<unknown>, { table });
  await outbox.ensureSchema();
  const spec = ledgerSpec('postgres', { mysql: MYSQL_URL, postgres: POSTGRES_URL });
  const ledger = await openLedger(spec);

  const settled: SettledEvent<unknown>[] = [];
  const published: { id: string; at: number }[] = [];
  const retries: RelayEvent[] = [];
  const problems: string[] = [];
  const consumerWarnings: string[] = [];
  const consumer = await broker.consume({
    store: ledger.store,
    consumer: 'ledger-service',
    apply: (tx, id) => ledger.credit(tx, id, 1),
    onSettled: (event) => settled.push(event),
    logger: { warn: (_fields, message) => consumerWarnings.push(message) },
  });
  const relay = createRelay(outbox, {
    publisher: broker.publisher(),
    batchSize: 20,
    pollInterval: 50,
    lease: '10s',
    // Enough attempts to outlast a leader election without parking anything.
    retry: { immediate: 1, interval: 200, backoff: 2, maxInterval: '2s', maxAttempts: 40 },
    listen: postgresListener(listenPool, { onError: (error) => problems.push(`LISTEN: ${String(error)}`) }),
    onPublished: (event) => published.push({ id: event.id, at: Date.now() }),
    onRetry: (event) => retries.push(event),
    onParked: (event) => problems.push(`parked ${event.id}: ${String(event.error)}`),
    onError: (error) => problems.push(`relay round: ${String(error)}`),
  });
  relay.start();

  const report: PipelineReport = { committed: 0, rolledBack: 0, applied: 0, duplicates: 0, deadLettered: 0, relayRetries: 0, consumerWarnings: 0, kills: [], durationMs: 0 };
  const applied = () => settled.filter((e) => e.settlement === 'applied').length;

  /** Kills the leader, waits until the relay and the consumer made progress without it, and starts it again. */
  async function killLeader(first: boolean): Promise<void> {
    const leader = await broker.leader();
    if (first) {
      broker.loseConfirms();
      // Publishes go out meanwhile; their confirms never come back.
      await sleep(500);
    }
    const [publishedBefore, appliedBefore] = [published.length, applied()];
    const down = Date.now();
    await leader.kill();
    await waitUntil(
      `the relay and the consumer to go on without ${leader.name}`,
      async () => published.length >= publishedBefore + 5 && applied() >= appliedBefore + 5,
      { timeoutMs: 60_000, intervalMs: 100 },
    ).catch((error: Error) => {
      // Which side stood still, and what each last said.
      const lastRetry = retries.at(-1);
      throw new Error(
        `${error.message}: published ${published.length - publishedBefore}, applied ${applied() - appliedBefore} since the kill; ` +
          `last retry: ${lastRetry ? String(lastRetry.error) : 'none'}; consumer warnings: ${consumerWarnings.slice(-3).join(' | ') || 'none'}`,
      );
    });
    report.kills.push({ node: leader.name, downMs: Date.now() - down, publishedWhileDown: published.length - publishedBefore, appliedWhileDown: applied() - appliedBefore });
    await leader.start();
  }

  const committed = new Set<string>();
  const rolledBack = new Set<string>();
  try {
    const killAt = Array.from({ length: options.kills }, (_, k) => Math.floor((options.transactions * (k + 1)) / (options.kills + 1)));
    // One kill at a time, beside the producer; the first failure is kept for the end.
    let killing: Promise<void> = Promise.resolve();
    let killFailed: unknown;
    for (let i = 0; i < options.transactions; i++) {
      if (killAt.includes(i)) {
        const first = i === killAt[0];
        killing = killing.then(() => killLeader(first)).catch((error: unknown) => void (killFailed ??= error));
      }
      let id = '';
      try {
        await outbox.store.transaction(async ({ tx }) => {
          id = await outbox.enqueue(tx, { topic: broker.topic, payload: { order: i } });
          if (i % 7 === 6) throw new RolledBack();
        });
        committed.add(id);
      } catch (error) {
        if (!(error instanceof RolledBack)) throw error;
        rolledBack.add(id);
      }
      await sleep(20);
    }
    await killing;
    if (killFailed) throw killFailed;

    const deadIds = () => new Set(settled.filter((e) => e.settlement === 'dead-letter').map((e) => e.messageId));
    await waitUntil(
      'every committed message applied or dead-lettered',
      async () => {
        const [rows, dead] = [await ledger.rows(), deadIds()];
        return [...committed].every((id) => rows.has(id) || dead.has(id));
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    await waitUntil('the outbox sent everything', async () => (await outbox.counts()).pending === 0, { timeoutMs: 60_000, intervalMs: 200 });
    await waitUntil('the broker delivered everything', async () => (await broker.unsettled()) === 0, { timeoutMs: 60_000, intervalMs: 500 });
    // Quiet for longer than an ack wait: a copy of a message whose ack was lost would show now.
    for (let seen = -1; seen !== settled.length; ) {
      seen = settled.length;
      await sleep(3000);
    }
    await relay.stop();
    await consumer.stop();

    const [rows, dead] = [await ledger.rows(), deadIds()];
    for (const id of committed) {
      const times = rows.get(id) ?? 0;
      if (times > 1) problems.push(`${id} applied ${times} times`);
      if (times === 0 && !dead.has(id)) problems.push(`${id} neither applied nor dead-lettered`);
    }
    for (const id of rolledBack) if (rows.has(id) || settled.some((e) => e.messageId === id)) problems.push(`${id} rolled back, yet delivered`);
    for (const id of rows.keys()) if (!committed.has(id)) problems.push(`${id} applied, but never committed`);
    expect(problems).toEqual([]);
    expect(await outbox.counts()).toEqual({ pending: 0, sent: committed.size, parked: 0 });
    expect(await broker.unsettled()).toBe(0);
    return Object.assign(report, {
      committed: committed.size,
      rolledBack: rolledBack.size,
      applied: rows.size,
      duplicates: settled.filter((e) => e.settlement === 'duplicate').length,
      deadLettered: dead.size,
      relayRetries: retries.length,
      consumerWarnings: consumerWarnings.length,
      durationMs: Date.now() - started,
    });
  } finally {
    await relay.stop();
    await consumer.stop();
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await Promise.all([pool.end(), listenPool.end(), ledger.close()]);
    await destroyLedger(spec);
  }
}

class RolledBack extends Error {}
