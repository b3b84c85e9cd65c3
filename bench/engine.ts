/**
 * What the benchmarks need from a database: the business transaction bare and with the SDK, and
 * the tables to run them on. (The hand-written barrier lives in bench/hand-barrier.ts, in processes of its own.)
 */
import type { EngineName } from '../servers/index.js';
import type { BarrierStore } from '../src/index.js';

export { ENGINES, type EngineName } from '../servers/index.js';

/** Barrier table layouts. `default` is what `ensureSchema` creates; the others are for comparison. */
export type Layout =
  /** DTM's DDL for the engine: surrogate `id` primary key plus a unique key (Postgres: no timestamp indexes). */
  | 'dtm'
  /** DTM's MySQL DDL shape: surrogate id, unique key, and indexes on create_time and update_time. */
  | 'dtm-indexed'
  /** The unique key as the clustered primary key, no surrogate id, a create_time index. */
  | 'clustered'
  /** The default table without its create_time index: one B-tree per insert, what pruning by key order would allow. */
  | 'key-only'
  /** PostgreSQL: the default table with a BRIN index on create_time in place of its B-tree (cheap to maintain for rows in time order). */
  | 'brin'
  | 'default';

/** One business statement: add `amount` to one account's balance. */
export interface Transfer {
  account: number;
  amount: number;
}

export type BranchOp = 'action' | 'compensate';

/** Rows in the accounts table that business transactions update; enough that 16 clients rarely collide. */
export const ACCOUNTS = 10_000;

export interface BenchEngine<Tx> {
  readonly name: EngineName;
  /** Starts the name of every table this engine's benchmarks create, its accounts table included. */
  readonly prefix: string;
  /** SQLite: the database file, for other processes to open. */
  readonly file?: string;
  /** The engine's version as it reports it. */
  readonly version: string;
  /** Layouts the schema comparison runs on this engine, `default` first. */
  readonly layouts: readonly Layout[];
  /** Drops and recreates a barrier table. */
  createBarrierTable(table: string, layout: Layout): Promise<void>;
  dropTable(table: string): Promise<void>;
  rowCount(table: string): Promise<number>;
  /**
   * Appends rows `from`..`to-1` of a synthetic set of `total` barrier rows dated 30 days back. The
   * gids are spread evenly over the hex key space that random UUIDs fall in, and loaded in key order.
   */
  bulkLoad(table: string, from: number, to: number, total: number): Promise<void>;
  /** Readies a freshly loaded table for measurement: statistics, and no pending vacuum or WAL backlog. */
  settle(table: string): Promise<void>;
  /** The SDK's store on a table (one per table, made once). */
  store(table: string): BarrierStore<Tx>;
  /** The business statements, run inside the SDK's transaction. */
  business(tx: Tx, transfers: readonly Transfer[]): Promise<void>;
  /** The business transaction with no barrier. */
  bare(transfers: readonly Transfer[]): Promise<void>;
  close(): Promise<void>;
}

/** Key spacing for `total` synthetic rows over eight hex digits (the first group of a UUID). */
export function keyStep(total: number): number {
  return Math.max(1, Math.floor(2 ** 32 / Math.max(total, 1)));
}

/** `count` distinct random accounts in ascending order (a fixed lock order: no deadlocks between clients). */
export function randomTransfers(count: number, sign: 1 | -1): Transfer[] {
  const accounts = new Set<number>();
  while (accounts.size < count) accounts.add(1 + Math.floor(Math.random() * ACCOUNTS));
  return [...accounts].sort((a, b) => a - b).map((account) => ({ account, amount: sign }));
}

/** Connections for the server engines: the most clients any section runs. */
export const POOL_SIZE = 16;
