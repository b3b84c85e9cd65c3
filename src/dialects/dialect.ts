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
  /** The reason of one row, read past any snapshot; parameters: gid, branch_id, op, barrier_id. */
  selectReason(table: string, placeholder?: Placeholder): string;
  /** Idempotent DDL: schema (where the name has one), table and the create_time index, in order. */
  createSchema(table: string): string[];
  /** Deletes at most `limit` rows older than `seconds`, by the database's clock; parameters: seconds, limit. */
  pruneBatch(table: string, placeholder?: Placeholder): string;
  /** True for an error a retry resolves: deadlock, serialization failure, lock timeout, busy file. */
  isRetryable(error: unknown): boolean;
  /**
   * A statement that fails if an earlier error aborted the transaction, where the engine would
   * otherwise turn the caller's COMMIT into a silent rollback (PostgreSQL). `within` runs it after
   * an applied op, since it cannot see the caller's COMMIT.
   */
  readonly abortedCheck?: string;
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
