/**
 * `prune` on a large table while inserts continue: rows pruned per second, and how long an insert
 * waited at worst, against the same inserts with no prune running.
 */
import { randomUUID } from 'node:crypto';
import type { BenchEngine } from './engine.js';
import { quantile, runUntil } from './rounds.js';
import { barrierOp, type Conflicts } from './throughput.js';

const LOAD_CHUNK = 1_000_000;
/** The store's default batch. */
const BATCH_SIZE = 1000;

export interface Latencies {
  inserts: number;
  p50: number;
  p99: number;
  max: number;
}

export interface PruneResult {
  /** Rows older than the retention before the prune started. */
  oldRows: number;
  deleted: number;
  pruneSeconds: number;
  batchSize: number;
  clients: number;
  /** The same inserts on the same table just before, with no prune running. */
  baseline: Latencies;
  during: Latencies;
  conflicts: Conflicts;
}

function latencies(samples: number[]): Latencies {
  return { inserts: samples.length, p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), max: Math.max(...samples) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function measurePrune<Tx>(
  engine: BenchEngine<Tx>,
  oldRows: number,
  clients: number,
  baselineSeconds: number,
): Promise<PruneResult> {
  const table = `${engine.prefix}prune`;
  await engine.createBarrierTable(table, 'default');
  for (let from = 0; from < oldRows; from += LOAD_CHUNK) {
    await engine.bulkLoad(table, from, Math.min(oldRows, from + LOAD_CHUNK), oldRows);
  }
  await engine.settle(table);

  const conflicts: Conflicts = {};
  const insert = barrierOp(engine, table, 'action', 1, conflicts, 'insert');
  const op = () => insert(randomUUID());
  const store = engine.store(table);

  const baseline = await runUntil(op, clients, sleep(baselineSeconds * 1000));
  const pruneStarted = performance.now();
  const pruning = store.prune({ olderThan: '7d', batchSize: BATCH_SIZE });
  const during = await runUntil(op, clients, pruning);
  const deleted = await pruning;
  const pruneSeconds = (performance.now() - pruneStarted) / 1000;

  await engine.dropTable(table);
  return {
    oldRows,
    deleted,
    pruneSeconds,
    batchSize: BATCH_SIZE,
    clients,
    baseline: latencies(baseline),
    during: latencies(during),
    conflicts,
  };
}
