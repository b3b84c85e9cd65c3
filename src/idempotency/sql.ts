import { countUpTo, type DialectName, dollarNumber, questionMark } from '../dialects/dialect.js';
import { dialects } from '../dialects/index.js';

/**
 * The SQL of the idempotency-key table on one engine. Every statement takes `?`-style or `$n`
 * parameters in the order its comment gives; times are epoch milliseconds from the application's
 * clock (a lifetime is hours, so clock skew between replicas of a few milliseconds is harmless).
 */
export interface IdempotencySql {
  /** Idempotent DDL: the table, then its expiry index. */
  createSchema(table: string): string[];
  /**
   * Puts back the lock wait the claim shortened, on engines where it is a setting of the
   * transaction (PostgreSQL), so the handler's statements wait as the store configured: needed
   * after a take-over only, since a claim that inserts its row puts it back itself. No parameters.
   */
  readonly restoreWait?: string;
  /**
   * Inserts the in-flight row unless one exists, failing at once (never waiting) when another open
   * transaction holds it; parameters: scope, idem_key, fingerprint, created_at, expires_at.
   */
  claim(table: string): string;
  /** The stored row; parameters: scope, idem_key. */
  select(table: string): string;
  /**
   * Reuses an expired row for a new request, failing at once if another transaction holds it;
   * parameters: fingerprint, created_at, expires_at, scope, idem_key, now.
   */
  takeOver(table: string): string;
  /** Stores the response; parameters: status, headers, body, scope, idem_key. */
  complete(table: string): string;
  /** Deletes at most `limit` expired rows; parameters: now, limit. */
  pruneBatch(table: string): string;
  /** Expired rows awaiting prune, counting at most the limit (`n`); parameters: now, limit. */
  expiredCount(table: string): string;
  /**
   * Of the `limit` live rows that expire first (`n`), those without a stored response (`open`),
   * and those of them created before a bound (`stuck`); parameters: bound, now, limit.
   */
  liveSummary(table: string): string;
}

const COLUMNS = '(scope, idem_key, fingerprint, created_at, expires_at)';
const SELECT_COLUMNS = 'fingerprint, status, headers, body, expires_at';
const quote = (table: string, engine: DialectName) => dialects[engine].quoteTable(table);

/**
 * The dashboard's statements, the same text on every engine but for quoting and placeholders.
 * Both walk the expires_at index, so they read at most `limit` rows; the oldest live keys come
 * first, which is where a key left without a response would be.
 */
function statsOf(engine: DialectName, p: (index: number) => string): Pick<IdempotencySql, 'expiredCount' | 'liveSummary'> {
  return {
    expiredCount: (table) => countUpTo(`${quote(table, engine)} WHERE expires_at <= ${p(1)}`, p(2)),
    liveSummary: (table) =>
      `SELECT COUNT(*) AS n, COUNT(CASE WHEN status IS NULL THEN 1 END) AS open, ` +
      `COUNT(CASE WHEN status IS NULL AND created_at < ${p(1)} THEN 1 END) AS stuck ` +
      `FROM (SELECT status, created_at FROM ${quote(table, engine)} WHERE expires_at > ${p(2)} ORDER BY expires_at LIMIT ${p(3)}) live`,
  };
}

// MariaDB's per-statement setting: a zero lock wait fails with 1205 at once and leaves the
// transaction open (it is rolled back next). INSERT IGNORE never sees a NULL or over-long value
// here: the key and scope are validated first.
const MARIADB_NO_WAIT = 'SET STATEMENT innodb_lock_wait_timeout = 0 FOR';

export const mysqlIdempotencySql: IdempotencySql = {
  // The key columns are bytes: under a _ci collation 'Key-1' and 'key-1' would be one key, and
  // every text collation (even _bin) pads, making 'key-1 ' and 'key-1' one key. 1020 bytes hold
  // 255 characters of UTF-8.
  createSchema: (table) => [
    `CREATE TABLE IF NOT EXISTS ${quote(table, 'mysql')} (
  scope VARBINARY(1020) NOT NULL,
  idem_key VARBINARY(255) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  status SMALLINT NULL COMMENT 'NULL while the first request is in flight',
  headers TEXT NULL,
  body LONGBLOB NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (scope, idem_key),
  KEY (expires_at)
) DEFAULT CHARACTER SET utf8mb4`,
  ],
  claim: (table) => `${MARIADB_NO_WAIT} INSERT IGNORE INTO ${quote(table, 'mysql')} ${COLUMNS} VALUES (?, ?, ?, ?, ?)`,
  // A locking read: sees the latest committed row whatever snapshot the transaction holds.
  select: (table) => `SELECT ${SELECT_COLUMNS} FROM ${quote(table, 'mysql')} WHERE scope = ? AND idem_key = ? LOCK IN SHARE MODE`,
  takeOver: (table) =>
    `${MARIADB_NO_WAIT} UPDATE ${quote(table, 'mysql')} SET fingerprint = ?, status = NULL, headers = NULL, body = NULL, created_at = ?, expires_at = ? ` +
    'WHERE scope = ? AND idem_key = ? AND expires_at <= ?',
  complete: (table) => `UPDATE ${quote(table, 'mysql')} SET status = ?, headers = ?, body = ? WHERE scope = ? AND idem_key = ?`,
  pruneBatch: (table) => `DELETE FROM ${quote(table, 'mysql')} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?`,
  ...statsOf('mysql', questionMark),
};

export const postgresIdempotencySql: IdempotencySql = {
  createSchema: (table) => {
    const name = table.split('.').at(-1)!;
    return [
      `CREATE TABLE IF NOT EXISTS ${quote(table, 'postgres')} (
  scope VARCHAR(255) NOT NULL,
  idem_key VARCHAR(255) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  status SMALLINT NULL,
  headers TEXT NULL,
  body BYTEA NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (scope, idem_key)
)`,
      `CREATE INDEX IF NOT EXISTS "${name}_expires_at" ON ${quote(table, 'postgres')} (expires_at)`,
    ];
  },
  // In the claim's own statement, before its row is inserted: keep the transaction's lock_timeout
  // aside, then set the smallest wait there is (0 would mean "wait forever"); both are local to the
  // transaction. The wait is read when a lock wait starts, so RETURNING, evaluated once the row is
  // in, puts the old one back in the same round trip. No row (the key is taken) returns nothing
  // and restores nothing: a take-over runs with the short wait too, then restoreWait.
  claim: (table) =>
    "WITH no_wait AS (SELECT set_config('txbarrier.lock_timeout', current_setting('lock_timeout'), true), set_config('lock_timeout', '1ms', true)) " +
    `INSERT INTO ${quote(table, 'postgres')} ${COLUMNS} SELECT $1, $2, $3, $4::bigint, $5::bigint FROM no_wait ON CONFLICT (scope, idem_key) DO NOTHING ` +
    "RETURNING set_config('lock_timeout', current_setting('txbarrier.lock_timeout'), true)",
  restoreWait: "SELECT set_config('lock_timeout', current_setting('txbarrier.lock_timeout'), true)",
  select: (table) => `SELECT ${SELECT_COLUMNS} FROM ${quote(table, 'postgres')} WHERE scope = $1 AND idem_key = $2`,
  takeOver: (table) =>
    `UPDATE ${quote(table, 'postgres')} SET fingerprint = $1, status = NULL, headers = NULL, body = NULL, created_at = $2, expires_at = $3 ` +
    'WHERE scope = $4 AND idem_key = $5 AND expires_at <= $6',
  complete: (table) => `UPDATE ${quote(table, 'postgres')} SET status = $1, headers = $2, body = $3 WHERE scope = $4 AND idem_key = $5`,
  pruneBatch: (table) =>
    `DELETE FROM ${quote(table, 'postgres')} WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM ${quote(table, 'postgres')} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2))`,
  ...statsOf('postgres', dollarNumber),
};

export const sqliteIdempotencySql: IdempotencySql = {
  createSchema: (table) => {
    const parts = table.split('.');
    const index = [...parts.slice(0, -1), `${parts.at(-1)}_expires_at`].map((part) => `"${part}"`).join('.');
    return [
      `CREATE TABLE IF NOT EXISTS ${quote(table, 'sqlite')} (
  scope TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  status INTEGER NULL,
  headers TEXT NULL,
  body BLOB NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (scope, idem_key)
)`,
      `CREATE INDEX IF NOT EXISTS ${index} ON "${parts.at(-1)}" (expires_at)`,
    ];
  },
  // The store's BEGIN IMMEDIATE already holds the write lock, and an in-process set answers a
  // request whose key is in flight before it queues: nothing here can wait on another writer.
  claim: (table) => `INSERT INTO ${quote(table, 'sqlite')} ${COLUMNS} VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  select: (table) => `SELECT ${SELECT_COLUMNS} FROM ${quote(table, 'sqlite')} WHERE scope = ? AND idem_key = ?`,
  takeOver: (table) =>
    `UPDATE ${quote(table, 'sqlite')} SET fingerprint = ?, status = NULL, headers = NULL, body = NULL, created_at = ?, expires_at = ? ` +
    'WHERE scope = ? AND idem_key = ? AND expires_at <= ?',
  complete: (table) => `UPDATE ${quote(table, 'sqlite')} SET status = ?, headers = ?, body = ? WHERE scope = ? AND idem_key = ?`,
  pruneBatch: (table) =>
    `DELETE FROM ${quote(table, 'sqlite')} WHERE rowid IN (SELECT rowid FROM ${quote(table, 'sqlite')} WHERE expires_at <= ? LIMIT ?)`,
  ...statsOf('sqlite', questionMark),
};

/** Each engine's idempotency SQL by dialect name. */
export const idempotencySql: Readonly<Record<DialectName, IdempotencySql>> = {
  mysql: mysqlIdempotencySql,
  postgres: postgresIdempotencySql,
  sqlite: sqliteIdempotencySql,
};

/** The table a route uses when none is given, on every engine: the connection's own database or search path. */
export const DEFAULT_IDEMPOTENCY_TABLE = 'idempotency_key';

/** The DDL `ensureIdempotencySchema` runs, for the CLI and `sql/idempotency-*.sql`. */
export function idempotencySchemaSql(engine: DialectName, table: string = DEFAULT_IDEMPOTENCY_TABLE): string[] {
  return idempotencySql[engine].createSchema(table);
}
