import type { Dialect, Placeholder } from './dialects/dialect.js';
import type { BarrierHooks } from './observe.js';

/** A row's values for the barrier insert, in `ROW_COLUMNS` order. */
export type Row = Record<string, unknown>;

/**
 * Statements on one connection inside one open transaction: the only thing an adapter or
 * executor translates. Everything else (which rows, what the counts mean) is the core's.
 */
export interface BarrierConnection<Tx> {
  /** What the business function receives: the driver's own connection or transaction object. */
  readonly tx: Tx;
  /** Runs a statement and resolves to the number of rows it inserted or deleted (not "matched"). */
  execute(sql: string, params: readonly unknown[]): Promise<number>;
  /** Runs a query and resolves to its rows. */
  select(sql: string, params: readonly unknown[]): Promise<Row[]>;
}

/** Where barrier rows live: an engine's SQL, a table, and who to tell about outcomes. */
export interface BarrierTarget {
  readonly dialect: Dialect;
  /** Unquoted `table` or `schema.table`, already validated. */
  readonly table: string;
  readonly hooks: BarrierHooks;
  /** Parameter placeholders the connection expects, when not the engine's own (knex wants `?` everywhere). */
  readonly placeholder?: Placeholder;
}

/**
 * A connection the caller has already put in a transaction and will commit or roll back itself
 * (an ORM's transaction, a pg client after BEGIN). Made by the executors; used by `Barrier.within`.
 */
export interface BarrierExecutor<Tx> extends BarrierTarget, BarrierConnection<Tx> {}

/** What every adapter implements: a transaction on a connection of its own. */
export interface BarrierStore<Tx> extends BarrierTarget {
  /**
   * Takes a connection, begins a transaction, runs `work`, commits if it resolves and rolls back
   * if it throws, rethrowing that same error. Always gives the connection back, and destroys one
   * whose state is unknown (a failed commit or rollback, a lost connection) rather than reuse it.
   * Throws if the commit did not take effect.
   */
  transaction<T>(work: (connection: BarrierConnection<Tx>) => Promise<T>): Promise<T>;
  /** Creates the schema (where named), the table and its index if missing. Idempotent. */
  ensureSchema(): Promise<void>;
  /** Deletes rows older than the retention, in short batches; resolves to how many it removed. */
  prune(options: PruneOptions): Promise<number>;
}

export interface PruneOptions {
  /** Keep rows younger than this: milliseconds, or a duration such as `'7d'`, `'12h'`, `'90m'`. */
  olderThan: number | string;
  /** Rows deleted per transaction (default 1000). */
  batchSize?: number;
  /** Allow a retention under one day. A late action that outlives its rows would apply. */
  force?: boolean;
  /** Called after each batch with the running total. */
  onProgress?: (deleted: number) => void;
}

/** The options every adapter accepts. */
export interface StoreOptions extends BarrierHooks {
  /** `table` or `schema.table`; validated as identifiers when the store is made. */
  table?: string;
}
