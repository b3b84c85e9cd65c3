/**
 * Insert cost as the barrier table grows: the same barrier-only transaction (insert + commit, no
 * business statement) on an empty table and on tables preloaded with millions of rows, interleaved.
 */
import { randomUUID } from 'node:crypto';
import type { BenchEngine } from './engine.js';
import { interleave, type Measured, type RoundPlan } from './rounds.js';
import { barrierOp, type Conflicts } from './throughput.js';

/** Rows per bulk-load statement: one short-enough transaction, and a progress line each. */
const LOAD_CHUNK = 1_000_000;

export interface GrowthResult {
  sizes: number[];
  /** Variant names are the sizes, as strings. */
  measured: Measured;
  conflicts: Conflicts;
  /** Seconds spent loading tables that were missing or short; undefined when every table was reused. */
  loadSeconds?: number;
}


/**
 * With `keep`, tables of `size` rows stay for the next run (loading 10M rows takes minutes), which
 * reuses them when they hold at least that many rows; `reload` rebuilds them. The empty table is
 * new every run.
 */
export async function measureGrowth<Tx>(
  engine: BenchEngine<Tx>,
  sizes: number[],
  plan: RoundPlan,
  options: { reload?: boolean; keep?: boolean; progress?: (line: string) => void } = {},
): Promise<GrowthResult> {
  const tableOf = (size: number) => `${engine.prefix}grow_${size}`;
  const started = performance.now();
  let loaded = false;
  for (const size of sizes) {
    const table = tableOf(size);
    const existing = size > 0 && !options.reload ? await engine.rowCount(table).catch(() => -1) : -1;
    if (existing >= size) continue;
    await engine.createBarrierTable(table, 'default');
    loaded ||= size > 0;
    for (let from = 0; from < size; from += LOAD_CHUNK) {
      await engine.bulkLoad(table, from, Math.min(size, from + LOAD_CHUNK), size);
      options.progress?.(`${engine.name}: loaded ${Math.min(size, from + LOAD_CHUNK)} of ${size} rows into ${table}`);
    }
    if (size > 0) await engine.settle(table);
  }
  const loadSeconds = loaded ? (performance.now() - started) / 1000 : undefined;

  const conflicts: Conflicts = {};
  const variants = sizes.map((size) => {
    const insert = barrierOp(engine, tableOf(size), 'action', 0, conflicts, String(size));
    return { name: String(size), op: () => insert(randomUUID()) };
  });
  const measured = await interleave(variants, plan);
  if (!options.keep) for (const size of sizes) await engine.dropTable(tableOf(size));
  return { sizes, measured, conflicts, ...(loadSeconds === undefined ? {} : { loadSeconds }) };
}
