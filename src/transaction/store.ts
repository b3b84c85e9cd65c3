import type { Dialect, Placeholder } from '../dialects/dialect.js';
import type { BarrierHooks } from '../observe/hooks.js';

/** One row of a query's result, keyed by column name. */
export type Row = Record<string, unknown>;

/**
 * How one driver or ORM runs a statement inside an open transaction, and where its result keeps the
 * affected-row count and the rows: the only thing an adapter translates. The core reads results
 * through these two readers and validates what they return, so no adapter can turn a missing count
 * into 0 (which would report every first request as a duplicate and skip its work).
 */
export interface StatementRunner<Tx, Result = any> {
  /** What the business function receives: the driver's own connection or transaction object. */
  readonly tx: Tx;
  /** Runs one statement with positional parameters and resolves to the driver's own result. */
  query(sql: string, params: readonly unknown[]): PromiseLike<Result>;
  /** The number of rows the statement inserted or deleted (not "matched"), as the driver reports it. */
  affectedRows(result: Result): unknown;
  /** The rows a query (or a statement with RETURNING) produced, as objects keyed by column name. */
  rows(result: Result): unknown;
}

/** Statements on one connection inside one open transaction, with their results checked. */
export interface BarrierConnection<Tx> {
  /** What the business function receives: the driver's own connection or transaction object. */
  readonly tx: Tx;
  /** Runs a statement and resolves to the number of rows it inserted or deleted. */
  execute(sql: string, params: readonly unknown[]): Promise<number>;
  /** Runs a query and resolves to its rows. */
  select(sql: string, params: readonly unknown[]): Promise<Row[]>;
  /** Runs a statement whose result nobody reads (DDL, a lock). */
  run(sql: string, params: readonly unknown[]): Promise<void>;
}

/** Where barrier rows live: an engine's SQL, a table, and who to tell about outcomes. */
export interface BarrierTarget {
  readonly dialect: Dialect;
  /** Unquoted `table` or `schema.table`, already validated. */
  readonly table: string;
  readonly hooks: BarrierHooks;
  /** Parameter placeholders the connection expects, when not the engine's own (knex wants `?` everywhere). */
  readonly placeholder?: Placeholder;
  /** `false` forces a compensation's two inserts into two statements (servers without `INSERT … RETURNING`). */
  readonly returning?: boolean;
}

/**
 * A connection the caller has already put in a transaction and will commit or roll back itself
 * (an ORM's transaction, a pg client after BEGIN). Made by the executors; used by `Barrier.within`.
 */
export interface BarrierExecutor<Tx> extends BarrierTarget, BarrierConnection<Tx> {
  /**
   * Calls `listener` once the caller's transaction has ended (true: committed), where the library
   * tells (knex's transaction promise, Sequelize's `afterCommit`), so hooks report the truth.
   */
  readonly onTransactionEnd?: (listener: (committed: boolean) => void) => void;
}

/** What every store offers: transactions on connections of its own. */
export interface BarrierStore<Tx> extends BarrierTarget {
  /**
   * Takes a connection, begins a transaction, runs `work`, commits if it resolves and rolls back
   * if it throws, rethrowing that same error. Always gives the connection back, and destroys one
   * whose state is unknown (a failed commit or rollback, a lost connection, a timeout) rather than
   * reuse it. Throws if the commit did not take effect.
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
  /** Rows deleted per transaction. Defaults to 1000. */
  batchSize?: number;
  /** Allow a retention under one day. A late action that outlives its rows would apply. Defaults to false. */
  force?: boolean;
  /** Called after each batch with the running total. */
  onProgress?: (deleted: number) => void;
}

/** The options every store and executor accepts. */
export interface TargetOptions extends BarrierHooks {
  /**
   * `table` or `schema.table`; validated as identifiers when the store is made.
   * Defaults to `dtm_barrier.barrier` (MySQL, PostgreSQL: DTM's own) or `barrier` (SQLite).
   */
  table?: string;
  /**
   * How a compensation learns which of its two rows went in. `true`: one `INSERT … RETURNING`
   * (PostgreSQL, SQLite, MariaDB ≥ 10.5); `false`: one insert per row (MySQL). Defaults to `true`,
   * and on MySQL a server that rejects `RETURNING` switches the process to `false` by itself.
   */
  returning?: boolean;
}

/** The options every store accepts. */
export interface StoreOptions extends TargetOptions {
  /**
   * How long, in milliseconds, any statement of a barrier transaction may wait for a row lock
   * (PostgreSQL `lock_timeout`, MySQL `innodb_lock_wait_timeout` rounded up to whole seconds,
   * SQLite: the wait for the file's queue in this process). A wait past it answers
   * `BarrierOngoing`, so the coordinator retries instead of a pooled connection being pinned
   * behind a long transaction. Defaults to 2000: under DTM's 3 s request timeout, so the
   * coordinator reads ONGOING rather than a timeout.
   */
  lockTimeout?: number;
  /**
   * How long, in milliseconds, the business function may run before its transaction is rolled back
   * (by closing its connection, which the server then ends) and the call answers `BarrierTimeout`
   * (ONGOING). On PostgreSQL the server also ends a transaction left idle that long. `false`: no bound.
   * Defaults to 10000 (one DTM retry interval). Not available on SQLite, whose one connection
   * cannot be closed under the function: there a hung function holds the file, and others get
   * `BarrierOngoing` after `lockTimeout`.
   */
  transactionTimeout?: number | false;
}
