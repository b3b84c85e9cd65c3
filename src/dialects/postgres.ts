import {
  countUpTo,
  type Dialect,
  dollarNumber,
  identifierParts,
  INSERT_COLUMNS,
  keyCondition,
  recentConsumers,
  someInChain,
  valuesList,
} from './dialect.js';

const quote = (part: string) => `"${part}"`;
const quoteTable = (table: string) => identifierParts(table).map(quote).join('.');

// serialization_failure (a racing barrier row under REPEATABLE READ/SERIALIZABLE),
// deadlock_detected, lock_not_available (lock_timeout), query_canceled (statement_timeout,
// typically a statement waiting on a row lock).
const RETRYABLE_CODES = new Set(['40001', '40P01', '55P03', '57014']);

const insertRows = (table: string, rowCount: number, placeholder = dollarNumber) =>
  `INSERT INTO ${quoteTable(table)} ${INSERT_COLUMNS} VALUES ${valuesList(rowCount, placeholder)} ` +
  `ON CONFLICT (gid, branch_id, op, barrier_id) DO NOTHING`;

/** Rows older than the seconds parameter by the database's clock: what prune deletes. */
const expired = (seconds: string) => `create_time < CURRENT_TIMESTAMP - make_interval(secs => ${seconds})`;

/** The advisory lock `ensureSchema` holds: 'txbarrie' in ASCII, an arbitrary number unlikely to be anyone else's. */
const SCHEMA_LOCK = '8392566076276369765';

export const postgresDialect: Dialect = {
  name: 'postgres',
  defaultTable: 'dtm_barrier.barrier',
  quoteTable,

  // The conflict target names the key columns rather than a constraint, so it works on DTM's
  // table (unique constraint uniq_barrier) and on ours (primary key) alike.
  insertRows,
  insertRowsReturning: (table, rowCount, placeholder) => `${insertRows(table, rowCount, placeholder)} RETURNING op`,
  rejectsReturning: () => false,

  // Under READ COMMITTED each statement sees the latest commit; under REPEATABLE READ a racing
  // row already raised 40001 in the insert, so a plain read is enough.
  selectReason: (table, placeholder = dollarNumber) =>
    `SELECT reason FROM ${quoteTable(table)} WHERE ${keyCondition(placeholder)}`,

  // Concurrent CREATE ... IF NOT EXISTS of one schema or table fail on PostgreSQL's catalogs
  // (23505), as when several replicas start at once; PostgreSQL's DDL is transactional, so one
  // transaction holds the lock over every statement.
  schemaLock: `SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`,

  // One round trip: the settings are SET LOCAL, so they end with the transaction and a pooled
  // (or PgBouncer-shared) connection goes back unchanged.
  beginStatements: ({ isolationLevel, lockTimeoutMs, idleTimeoutMs }) => ({
    session: [],
    transaction: [
      isolationLevel ? `BEGIN ISOLATION LEVEL ${isolationLevel}` : 'BEGIN',
      `SET LOCAL lock_timeout = ${lockTimeoutMs}`,
      // The client's timeout closes the socket, but the backend runs its statement to the end (a
      // pg_sleep, a runaway query, holding locks): the server bounds a statement as it bounds
      // idleness. (transaction_timeout, PostgreSQL ≥ 17, would cost a version check per connection.)
      ...(idleTimeoutMs === false
        ? []
        : [`SET LOCAL idle_in_transaction_session_timeout = ${idleTimeoutMs}`, `SET LOCAL statement_timeout = ${idleTimeoutMs}`]),
    ],
  }),

  createSchema(table) {
    const parts = identifierParts(table);
    const name = parts.at(-1)!;
    // The key is the primary key, with no surrogate id (measured 0.72x of a bare transaction
    // against 0.63x for DTM's layout). A table called `barrier` names it uniq_barrier, the
    // constraint DTM's Go client names in ON CONFLICT ON CONSTRAINT.
    const keyName = name === 'barrier' ? 'uniq_barrier' : `${name}_uniq_barrier`;
    return [
      ...(parts.length === 2 ? [`CREATE SCHEMA IF NOT EXISTS ${quote(parts[0]!)}`] : []),
      `CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (
  trans_type VARCHAR(45) NOT NULL DEFAULT '',
  gid VARCHAR(128) NOT NULL,
  branch_id VARCHAR(128) NOT NULL,
  op VARCHAR(45) NOT NULL,
  barrier_id VARCHAR(45) NOT NULL,
  reason VARCHAR(45) NOT NULL DEFAULT '',
  create_time TIMESTAMP(0) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TIMESTAMP(0) WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT ${quote(keyName)} PRIMARY KEY (gid, branch_id, op, barrier_id)
)`,
      `CREATE INDEX IF NOT EXISTS ${quote(`${name}_create_time`)} ON ${quoteTable(table)} (create_time)`,
    ];
  },

  // ORDER BY keeps the planner on the create_time index: without it, when most rows are old, it
  // picks a sequential scan that stops at the limit, and the sweep's last batch reads the whole table.
  pruneBatch: (table, placeholder = dollarNumber) =>
    `DELETE FROM ${quoteTable(table)} WHERE ctid = ANY(ARRAY(
  SELECT ctid FROM ${quoteTable(table)}
  WHERE ${expired(placeholder(1))} ORDER BY create_time LIMIT ${placeholder(2)}))`,

  abortedCheck: 'SELECT 1',

  stats: (table, placeholder = dollarNumber) => ({
    // reltuples is -1 until the table was first vacuumed or analysed: no estimate then.
    estimate: `SELECT reltuples::bigint AS n FROM pg_class WHERE oid = to_regclass('${quoteTable(table)}') AND reltuples >= 0`,
    countUpTo: countUpTo(quoteTable(table), placeholder(1)),
    // A bare MIN in a subquery: the planner reads it from the end of the create_time index.
    oldestAge: `SELECT EXTRACT(EPOCH FROM CURRENT_TIMESTAMP - (SELECT MIN(create_time) FROM ${quoteTable(table)})) AS age`,
    prunable: countUpTo(`${quoteTable(table)} WHERE ${expired(placeholder(1))}`, placeholder(2)),
    recentConsumers: recentConsumers(quoteTable(table), placeholder(1)),
  }),

  isRetryable: (error) => someInChain(error, (e) => typeof e.code === 'string' && RETRYABLE_CODES.has(e.code)),
  endsTransaction: () => false,
  // undefined_table; invalid_schema_name when the schema is missing too.
  isMissingTable: (error) => someInChain(error, (e) => e.code === '42P01' || e.code === '3F000'),
};
