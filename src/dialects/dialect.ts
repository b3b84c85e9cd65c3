import { BarrierConfigError } from '../errors.js';

export type DialectName = 'mysql' | 'postgres' | 'sqlite';

/** Turns the n-th parameter (1-based) into the placeholder a driver or ORM expects. */
export type Placeholder = (index: number) => string;
export const questionMark: Placeholder = () => '?';
export const dollarNumber: Placeholder = (index) => `$${index}`;

/**
 * The SQL of one engine. Pure text and error classification: a dialect never touches a driver,
 * so the same dialect serves a raw pool, a user's ORM transaction and the CLI.
 * `table` is always the unquoted `table` or `schema.table`; each statement takes its
 * parameters in the order documented on the method.
 */
export interface Dialect {
  readonly name: DialectName;
  /** The table a store or executor uses when none is given: DTM's own name where the engine has schemas. */
  readonly defaultTable: string;
  /** The table name quoted for this engine; throws `BarrierConfigError` unless it is `table` or `schema.table`. */
  quoteTable(table: string): string;
  /**
   * Insert-ignore of `rowCount` barrier rows in one statement; parameters per row:
   * trans_type, gid, branch_id, op, barrier_id, reason. Only a unique-key conflict may be ignored.
   */
  insertRows(table: string, rowCount: number, placeholder?: Placeholder): string;
  /** `insertRows` that also returns the `op` of each row that went in (`INSERT … RETURNING op`). */
  insertRowsReturning(table: string, rowCount: number, placeholder?: Placeholder): string;
  /** True for the error a server without `INSERT … RETURNING` gives it (MySQL: a syntax error, which leaves the transaction open). */
  rejectsReturning(error: unknown): boolean;
  /** The reason of one row, read past any snapshot; parameters: gid, branch_id, op, barrier_id. */
  selectReason(table: string, placeholder?: Placeholder): string;
  /** Idempotent DDL: schema (where the name has one), table and the create_time index, in order. */
  createSchema(table: string): string[];
  /**
   * A statement that makes concurrent `createSchema` runs take turns, where the engine's catalogs
   * fail them otherwise (PostgreSQL: 23505 when replicas start together). With it, the whole DDL
   * runs in one transaction behind the lock; without it, one transaction per statement (MySQL's
   * DDL commits by itself anyway).
   */
  readonly schemaLock?: string;
  /**
   * The statements that open a barrier transaction: `session` once per connection, `transaction`
   * at every BEGIN (a driver that can send several in one round trip does).
   */
  beginStatements(settings: TransactionSettings): { session: string[]; transaction: string[] };
  /** Deletes at most `limit` rows older than `seconds`, by the database's clock; parameters: seconds, limit. */
  pruneBatch(table: string, placeholder?: Placeholder): string;
  /** True for an error a retry resolves: deadlock, serialization failure, lock timeout, busy file. */
  isRetryable(error: unknown): boolean;
  /** True for an error after which the engine has already rolled the whole transaction back (MySQL's deadlock). */
  endsTransaction(error: unknown): boolean;
  /** True for "the table does not exist", so the barrier can name the table and the fix. */
  isMissingTable(error: unknown): boolean;
  /**
   * A statement that fails if an earlier error aborted the transaction, where the engine would
   * otherwise turn the caller's COMMIT into a silent rollback (PostgreSQL). `within` runs it after
   * an applied op, since it cannot see the caller's COMMIT.
   */
  readonly abortedCheck?: string;
  /** Read-only statements on the barrier table for metrics and the dashboard. */
  stats(table: string, placeholder?: Placeholder): BarrierStatsSql;
}

/**
 * What metrics and the dashboard ask of the barrier table, each statement bounded: no index is added
 * for it, and no statement reads more than its limit parameter's rows (the estimate reads the catalog).
 */
export interface BarrierStatsSql {
  /** The row count from the engine's statistics (`n`), where it keeps one; no parameters. */
  readonly estimate?: string;
  /** Rows, counting at most the limit (`n`); parameters: limit. */
  countUpTo: string;
  /** Seconds since the oldest row's create_time by the database's clock (`age`, NULL when empty); no parameters. */
  oldestAge: string;
  /** Rows `prune` would delete with this retention, counting at most the limit (`n`); parameters: seconds, limit. */
  prunable: string;
  /**
   * Of the newest `limit` rows, how many each consumer key has (`branch_id`, `n`): the keys with a
   * `/`, which `compositeKey` makes of a consumer and its source; the 20 busiest. Parameters: limit.
   */
  recentConsumers: string;
}

/** `BarrierStatsSql.recentConsumers` for a quoted table and a limit placeholder, where the create_time index leads to branch_id. */
export function recentConsumers(table: string, limit: string): string {
  return (
    `SELECT branch_id, COUNT(*) AS n FROM (SELECT branch_id FROM ${table} ORDER BY create_time DESC LIMIT ${limit}) newest ` +
    `WHERE branch_id LIKE '%/%' GROUP BY branch_id ORDER BY n DESC, branch_id LIMIT 20`
  );
}

/** `SELECT COUNT(*) AS n` over at most the limit parameter's rows of `from` (which ends in a WHERE or a table). */
export function countUpTo(from: string, limit: string): string {
  return `SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM ${from} LIMIT ${limit}) counted`;
}

/** What a store asks of every transaction it opens. */
export interface TransactionSettings {
  /** `READ COMMITTED`, `REPEATABLE READ` or `SERIALIZABLE`; the server's default when absent. */
  isolationLevel?: string;
  /** The longest a statement may wait for a row lock, in milliseconds. */
  lockTimeoutMs: number;
  /** The longest the transaction may sit idle, where the server can enforce it; `false` for no bound. */
  idleTimeoutMs: number | false;
}

/** Whether `error` or anything it wraps matches. */
export function someInChain(error: unknown, matches: (e: Record<string, unknown>) => boolean): boolean {
  for (const e of errorChain(error)) if (matches(e)) return true;
  return false;
}

/** The columns every barrier insert fills, in parameter order. */
export const ROW_COLUMNS = ['trans_type', 'gid', 'branch_id', 'op', 'barrier_id', 'reason'] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Splits and checks `table` or `schema.table`; quoting is left to the dialect. */
export function identifierParts(name: string): string[] {
  const parts = typeof name === 'string' ? name.split('.') : [];
  if (parts.length === 0 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new BarrierConfigError(
      `table name ${JSON.stringify(name)} is not an identifier: use letters, digits and _ ` +
        `(not starting with a digit, at most 63 characters), optionally as schema.table`,
      { code: 'ERR_TXBARRIER_TABLE_NAME' },
    );
  }
  return parts;
}

/** `(p1, p2, …, p6, now, now), …` with parameter numbers running across rows. */
export function valuesList(rowCount: number, placeholder: Placeholder, now = 'CURRENT_TIMESTAMP'): string {
  const rows: string[] = [];
  for (let row = 0; row < rowCount; row++) {
    const params = ROW_COLUMNS.map((_, column) => placeholder(row * ROW_COLUMNS.length + column + 1));
    // Timestamps are set explicitly: DTM's Postgres DDL defaults them to NULL, and pruning needs them.
    rows.push(`(${params.join(', ')}, ${now}, ${now})`);
  }
  return rows.join(', ');
}

export const INSERT_COLUMNS = `(${ROW_COLUMNS.join(', ')}, create_time, update_time)`;

export function keyCondition(placeholder: Placeholder): string {
  return `gid = ${placeholder(1)} AND branch_id = ${placeholder(2)} AND op = ${placeholder(3)} AND barrier_id = ${placeholder(4)}`;
}

/** The error itself and whatever it wraps: `cause` (standard), `parent`/`original` (Sequelize), `driverError` (TypeORM). */
export function* errorChain(error: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  let current = error;
  while (current !== null && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const record = current as Record<string, unknown>;
    yield record;
    current = record.cause ?? record.parent ?? record.original ?? record.driverError;
  }
}
