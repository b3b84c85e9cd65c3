import { countUpTo, type DialectName, dollarNumber, identifierParts, type Placeholder, questionMark } from '../../dialects/dialect.js';

/**
 * The outbox table's SQL for each engine. Pure text, like the barrier's dialects: the statements
 * run through whatever store or executor the caller has. `table` is the unquoted `table` or
 * `schema.table`, already validated. All times are the database's clock in UTC, so relays on
 * machines whose clocks disagree still agree on when a message is due.
 */
export interface OutboxSql {
  /** Idempotent DDL: schema (where the name has one), table, indexes, in order. */
  createSchema(): string[];
  /** One message; parameters: id, topic, msg_key, headers, payload, then the NOTIFY channel where `notify`. */
  insert(notify: boolean): string;
  /**
   * PostgreSQL: the wake-up sent after a commit that enqueued, alone in a transaction; parameters:
   * the channel. Its commit skips the WAL flush (`synchronous_commit` off for this transaction:
   * it writes no data), so it holds the notification queue's lock only for a moment.
   */
  notify?(): string;
  /**
   * Up to `limit` due messages in enqueue order, skipping rows another relay holds, and any keyed
   * message behind an unsent (pending or parked) one of its key. No parameters.
   */
  claim(limit: number): string;
  /** Counts an attempt and hides `count` messages for the lease; parameters: lease ms, then each seq. */
  lease(count: number): string;
  /**
   * Parameters: each seq, then each id. Only a pending message can become sent. An outcome names
   * the message by its id as well as its seq: SQLite gives a deleted row's seq to the next insert,
   * so a relay whose publish returns after its lease, a second relay's publish and a prune would
   * otherwise mark a message sent that no broker ever saw.
   */
  markSent(count: number): string;
  /** Parameters: delay ms, error text, seq, id. */
  retryLater(): string;
  /** Parameters: error text, seq, id. */
  park(): string;
  /** Deletes at most `limit` messages sent more than `ms` ago; parameters: ms, limit. */
  pruneBatch(): string;
  /** Messages of one status, oldest first, with ISO times; parameters: limit. */
  list(status: OutboxStatus): string;
  /** Rows per status. */
  countByStatus(): string;
  /** Rows of one status, counted up to the limit along the (status, seq) index so the cost stays bounded; parameters: status, limit. */
  countUpTo(): string;
  /** The age in seconds of the oldest pending message, by the database's clock; no row when none is pending. No parameters. */
  oldestPendingAge(): string;
  /** Makes `count` parked messages (by id) pending again, with their attempts reset; parameters: each id. */
  requeue(count: number): string;
  /**
   * The dashboard's summary of the oldest `limit` messages of one status: `n`, `oldest` (seconds),
   * `held` (hidden until a later time: leased, or waiting for a retry), `leased` (held and never
   * failed, so leased), and `older_<i>` (how many are at least threshold i seconds old).
   * Parameters: each threshold in seconds, then the limit.
   */
  summary(status: OutboxStatus, thresholds: number): string;
  /** Of the newest `limit` sent messages (`n`), how many were sent within the last seconds (`recent`); parameters: seconds, limit. */
  recentlySent(): string;
  /** The seq of a message that is still pending; parameters: id. */
  pendingSeq(): string;
  /** One message with its headers and payload, ISO times; parameters: id. */
  message(): string;
}

export type OutboxStatus = 'pending' | 'sent' | 'parked';

/**
 * One status along the (status, seq) index, oldest or newest first. A range rather than `=`, and
 * the order spelt (status, seq): with `status = $1 ORDER BY seq`, PostgreSQL may walk the primary
 * key instead and filter, reading every older message of the other statuses (measured: 90,000 rows
 * read for 1,000 pending ones at 100k rows), because it takes the statuses to be spread evenly.
 */
function ofStatus(status: OutboxStatus, direction: 'ASC' | 'DESC'): string {
  if (status !== 'pending' && status !== 'sent' && status !== 'parked') throw new RangeError(`not an outbox status: ${String(status)}`);
  return `status >= '${status}' AND status <= '${status}' ORDER BY status ${direction}, seq ${direction}`;
}

/** What differs between the engines; the statements are built from these. */
interface Engine {
  placeholder: Placeholder;
  quote(part: string): string;
  now: string;
  /** Now plus (or minus) a parameter holding milliseconds. */
  shifted(param: string, sign: '+' | '-'): string;
  /** The engine's way of reading a timestamp column as ISO 8601 text in UTC. */
  iso(column: string): string;
  /** Seconds from a timestamp column to now, by the database's clock. */
  age(column: string): string;
  /** Appended to the claim's SELECT. */
  lockClause: string;
  /** How the claim selects pending messages (alias `o`) and orders them by seq. */
  pending: { where: string; order: string };
  /** The table as an UPDATE by seq names it. */
  updateBySeq(table: string): string;
  createSchema(table: string, parts: string[]): string[];
  pruneBatch(table: string, placeholder: Placeholder): string;
  /** The insert's values when PostgreSQL should also wake the relays at commit. */
  notifyingInsert?(columns: string, placeholder: Placeholder): string;
  notify?(placeholder: Placeholder): string;
}

const COLUMNS = '(id, topic, msg_key, headers, payload, status, attempts, available_at, created_at)';
const STATUSES = "status IN ('pending', 'sent', 'parked')";

const doubleQuote = (part: string) => `"${part}"`;

const postgres: Engine = {
  placeholder: dollarNumber,
  quote: doubleQuote,
  now: 'CURRENT_TIMESTAMP',
  shifted: (param, sign) => `CURRENT_TIMESTAMP ${sign} ${param} * INTERVAL '1 millisecond'`,
  iso: (column) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
  age: (column) => `EXTRACT(EPOCH FROM CURRENT_TIMESTAMP - ${column})`,
  // OF o: lock the claimed rows only, never the ones the ordering check reads.
  lockClause: ' FOR UPDATE OF o SKIP LOCKED',
  // Along the (status, seq) index, spelt as for `ofStatus`. With `status = 'pending' ORDER BY seq`
  // the planner, whose statistics still say the table is pending, walks the primary key through
  // every sent message: measured 150 ms per claim at 82,000 sent of 100,000, a drain quadratic in
  // the backlog. Along the index a claim passes only the entries of the messages claimed since the
  // previous one (their older versions), and marks those dead for the claims after it.
  pending: { where: "o.status >= 'pending' AND o.status <= 'pending'", order: 'o.status, o.seq' },
  updateBySeq: (table) => table,
  createSchema(table, parts) {
    const name = parts.at(-1)!;
    return [
      ...(parts.length === 2 ? [`CREATE SCHEMA IF NOT EXISTS ${doubleQuote(parts[0]!)}`] : []),
      `CREATE TABLE IF NOT EXISTS ${table} (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id VARCHAR(36) NOT NULL,
  topic VARCHAR(255) NOT NULL,
  msg_key VARCHAR(255),
  headers TEXT NOT NULL DEFAULT '{}',
  payload BYTEA NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending' CHECK (${STATUSES}),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_error TEXT,
  created_at TIMESTAMP(3) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  sent_at TIMESTAMP(3) WITH TIME ZONE,
  CONSTRAINT ${doubleQuote(`${name}_id`)} UNIQUE (id)
)`,
      `CREATE INDEX IF NOT EXISTS ${doubleQuote(`${name}_status_seq`)} ON ${table} (status, seq)`,
      `CREATE INDEX IF NOT EXISTS ${doubleQuote(`${name}_key_seq`)} ON ${table} (msg_key, seq) WHERE msg_key IS NOT NULL`,
    ];
  },
  pruneBatch: (table, p) =>
    `DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE status = 'sent' AND sent_at < ` +
    `${postgres.shifted(p(1), '-')} ORDER BY seq LIMIT ${p(2)})`,
  // For a transaction whose commit the outbox cannot see (an executor that does not report its end):
  // NOTIFY is delivered at commit and only if the transaction commits, exactly when a relay should
  // look, at the price of serialised commits (wake.ts). pg_notify in FROM keeps enqueue one round trip.
  notifyingInsert: (columns, p) =>
    `${columns} SELECT ${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}::bytea, 'pending', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP ` +
    `FROM pg_notify(${p(6)}, '')`,
  notify: (p) => `SELECT pg_notify(${p(1)}, ''), set_config('synchronous_commit', 'off', true)`,
};

const backquote = (part: string) => `\`${part}\``;

const mysql: Engine = {
  placeholder: questionMark,
  quote: backquote,
  // DATETIME has no zone: UTC everywhere, whatever each session's time_zone says.
  now: 'UTC_TIMESTAMP(3)',
  shifted: (param, sign) => `UTC_TIMESTAMP(3) ${sign} INTERVAL (${param} * 1000) MICROSECOND`,
  iso: (column) => `DATE_FORMAT(${column}, '%Y-%m-%dT%H:%i:%s.%fZ')`,
  age: (column) => `TIMESTAMPDIFF(MICROSECOND, ${column}, UTC_TIMESTAMP(3)) / 1000000`,
  // MariaDB 10.6+ and MySQL 8.0+.
  lockClause: ' FOR UPDATE SKIP LOCKED',
  pending: { where: "o.status = 'pending'", order: 'o.seq' },
  // On a small table InnoDB prefers a full scan for `seq IN (…)`, which waits on every row
  // another relay has claimed; by the primary key it touches only the rows this relay holds.
  updateBySeq: (table) => `${table} FORCE INDEX (PRIMARY)`,
  createSchema(table, parts) {
    return [
      ...(parts.length === 2 ? [`CREATE DATABASE IF NOT EXISTS ${backquote(parts[0]!)} DEFAULT CHARACTER SET utf8mb4`] : []),
      // Keys compare bytes (utf8mb4_bin), so 'Order-1' and 'order-1' are two ordering keys.
      `CREATE TABLE IF NOT EXISTS ${table} (
  seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  topic VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
  msg_key VARCHAR(255) COLLATE utf8mb4_bin NULL,
  headers TEXT NOT NULL,
  payload LONGBLOB NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'pending' CHECK (${STATUSES}),
  attempts INT NOT NULL DEFAULT 0,
  available_at DATETIME(3) NOT NULL,
  last_error TEXT NULL,
  created_at DATETIME(3) NOT NULL,
  sent_at DATETIME(3) NULL,
  UNIQUE KEY id (id),
  KEY status_seq (status, seq),
  KEY key_seq (msg_key, seq)
) DEFAULT CHARACTER SET utf8mb4`,
    ];
  },
  pruneBatch: (table, p) =>
    `DELETE FROM ${table} WHERE status = 'sent' AND sent_at < ${mysql.shifted(p(1), '-')} ORDER BY seq LIMIT ${p(2)}`,
};

/** `YYYY-MM-DD HH:MM:SS.SSS`, which sorts as it compares. */
const SQLITE_TIME = "'%Y-%m-%d %H:%M:%f'";

const sqlite: Engine = {
  placeholder: questionMark,
  quote: doubleQuote,
  now: `strftime(${SQLITE_TIME}, 'now')`,
  // `||` binds tighter than `/` in SQLite, hence the parentheses.
  shifted: (param, sign) => `strftime(${SQLITE_TIME}, 'now', '${sign}' || (${param} / 1000.0) || ' seconds')`,
  iso: (column) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${column})`,
  age: (column) => `(julianday('now') - julianday(${column})) * 86400.0`,
  // One writer at a time (BEGIN IMMEDIATE): there is nobody to skip.
  lockClause: '',
  // As on PostgreSQL: once ANALYZE has seen a pending backlog, `status = 'pending' ORDER BY seq`
  // scans the table by seq from its first (sent) row.
  pending: postgres.pending,
  updateBySeq: (table) => table,
  createSchema(table, parts) {
    const name = parts.at(-1)!;
    // An index lives in its table's schema, so SQLite qualifies the index name, not the table.
    const index = (suffix: string) => [...parts.slice(0, -1), `${name}_${suffix}`].map(doubleQuote).join('.');
    return [
      `CREATE TABLE IF NOT EXISTS ${table} (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL,
  msg_key TEXT,
  headers TEXT NOT NULL DEFAULT '{}',
  payload BLOB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (${STATUSES}),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at TEXT NOT NULL,
  last_error TEXT,
  created_at TEXT NOT NULL,
  sent_at TEXT
)`,
      `CREATE INDEX IF NOT EXISTS ${index('status_seq')} ON ${doubleQuote(name)} (status, seq)`,
      `CREATE INDEX IF NOT EXISTS ${index('key_seq')} ON ${doubleQuote(name)} (msg_key, seq) WHERE msg_key IS NOT NULL`,
    ];
  },
  pruneBatch: (table, p) =>
    `DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE status = 'sent' AND sent_at < ` +
    `${sqlite.shifted(p(1), '-')} ORDER BY seq LIMIT ${p(2)})`,
};

const ENGINES: Record<DialectName, Engine> = { postgres, mysql, sqlite };

/** The outbox statements of one table on one engine, in one placeholder style. */
export function outboxSql(engine: DialectName, table: string, placeholder?: Placeholder): OutboxSql {
  const e = ENGINES[engine];
  const p = placeholder ?? e.placeholder;
  const parts = identifierParts(table);
  const t = parts.map(e.quote).join('.');
  const params = (count: number, first = 1) => Array.from({ length: count }, (_, i) => p(first + i)).join(', ');
  const columns = `INSERT INTO ${t} ${COLUMNS}`;

  return {
    createSchema: () => e.createSchema(t, parts),
    insert: (notify) =>
      notify && e.notifyingInsert
        ? e.notifyingInsert(columns, p)
        : `${columns} VALUES (${params(5)}, 'pending', 0, ${e.now}, ${e.now})`,
    ...(e.notify ? { notify: () => e.notify!(p) } : {}),
    claim: (limit) =>
      `SELECT o.seq, o.id, o.topic, o.msg_key, o.headers, o.payload, o.attempts FROM ${t} o
WHERE ${e.pending.where} AND o.available_at <= ${e.now}
  AND (o.msg_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM ${t} p WHERE p.msg_key = o.msg_key AND p.seq < o.seq AND p.status <> 'sent'))
ORDER BY ${e.pending.order} LIMIT ${positiveInteger(limit)}${e.lockClause}`,
    lease: (count) =>
      `UPDATE ${e.updateBySeq(t)} SET attempts = attempts + 1, available_at = ${e.shifted(p(1), '+')} WHERE seq IN (${params(count, 2)})`,
    markSent: (count) =>
      `UPDATE ${e.updateBySeq(t)} SET status = 'sent', sent_at = ${e.now}, last_error = NULL ` +
      `WHERE status = 'pending' AND seq IN (${params(count)}) AND id IN (${params(count, count + 1)})`,
    retryLater: () =>
      `UPDATE ${e.updateBySeq(t)} SET available_at = ${e.shifted(p(1), '+')}, last_error = ${p(2)} WHERE status = 'pending' AND seq = ${p(3)} AND id = ${p(4)}`,
    park: () => `UPDATE ${e.updateBySeq(t)} SET status = 'parked', last_error = ${p(1)} WHERE status = 'pending' AND seq = ${p(2)} AND id = ${p(3)}`,
    pruneBatch: () => e.pruneBatch(t, p),
    list: (status) =>
      `SELECT id, topic, msg_key, attempts, last_error, ${e.iso('created_at')} AS created_at, ${e.iso('available_at')} AS available_at ` +
      `FROM ${t} WHERE ${ofStatus(status, 'ASC')} LIMIT ${p(1)}`,
    countByStatus: () => `SELECT status, COUNT(*) AS n FROM ${t} GROUP BY status`,
    countUpTo: () => countUpTo(`${t} WHERE status = ${p(1)}`, p(2)),
    oldestPendingAge: () => `SELECT ${e.age('created_at')} AS age FROM ${t} WHERE status = 'pending' ORDER BY seq LIMIT 1`,
    requeue: (count) =>
      `UPDATE ${t} SET status = 'pending', attempts = 0, available_at = ${e.now}, last_error = NULL ` +
      `WHERE status = 'parked' AND id IN (${params(count)})`,
    // Along the (status, seq) index from its old end, so a backlog of millions costs `limit` rows.
    summary: (status, thresholds) =>
      `SELECT COUNT(*) AS n, MAX(age) AS oldest, COUNT(CASE WHEN held THEN 1 END) AS held, COUNT(CASE WHEN held AND clean THEN 1 END) AS leased` +
      Array.from({ length: thresholds }, (_, i) => `, COUNT(CASE WHEN age >= ${p(i + 1)} THEN 1 END) AS older_${i}`).join('') +
      ` FROM (SELECT ${e.age('created_at')} AS age, available_at > ${e.now} AS held, last_error IS NULL AS clean FROM ${t} ` +
      `WHERE ${ofStatus(status, 'ASC')} LIMIT ${p(thresholds + 1)}) oldest_first`,
    // sent_at has no index (nothing else reads it): the newest sent by seq stand in for the newest by sent_at.
    recentlySent: () =>
      `SELECT COUNT(*) AS n, COUNT(CASE WHEN age <= ${p(1)} THEN 1 END) AS recent ` +
      `FROM (SELECT ${e.age('sent_at')} AS age FROM ${t} WHERE ${ofStatus('sent', 'DESC')} LIMIT ${p(2)}) newest_first`,
    pendingSeq: () => `SELECT seq FROM ${t} WHERE id = ${p(1)} AND status = 'pending'`,
    message: () =>
      `SELECT id, topic, msg_key, status, attempts, last_error, headers, payload, ${e.iso('created_at')} AS created_at, ` +
      `${e.iso('available_at')} AS available_at, ${e.iso('sent_at')} AS sent_at FROM ${t} WHERE id = ${p(1)}`,
  };
}

function positiveInteger(value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`expected a positive integer; got ${value}`);
  return value;
}
