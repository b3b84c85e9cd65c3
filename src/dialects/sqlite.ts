import {
  countUpTo,
  type Dialect,
  identifierParts,
  INSERT_COLUMNS,
  keyCondition,
  questionMark,
  recentConsumers,
  someInChain,
  valuesList,
} from './dialect.js';

const quote = (part: string) => `"${part}"`;
const quoteTable = (table: string) => identifierParts(table).map(quote).join('.');

// ON CONFLICT DO NOTHING, not INSERT OR IGNORE: OR IGNORE would also swallow NOT NULL
// violations and make them look like duplicates.
const insertRows = (table: string, rowCount: number, placeholder = questionMark) =>
  `INSERT INTO ${quoteTable(table)} ${INSERT_COLUMNS} VALUES ${valuesList(rowCount, placeholder)} ON CONFLICT DO NOTHING`;

/** Rows older than the seconds parameter by the database's clock: what prune deletes. */
const expired = (seconds: string) => `create_time < datetime('now', '-' || ${seconds} || ' seconds')`;

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  defaultTable: 'barrier',
  quoteTable,

  insertRows,
  // SQLite ≥ 3.35 (every better-sqlite3 12 and node:sqlite) returns only the rows that went in.
  insertRowsReturning: (table, rowCount, placeholder) => `${insertRows(table, rowCount, placeholder)} RETURNING op`,
  rejectsReturning: () => false,

  // BEGIN IMMEDIATE holds the write lock, so there is no stale snapshot to read past.
  selectReason: (table, placeholder = questionMark) =>
    `SELECT reason FROM ${quoteTable(table)} WHERE ${keyCondition(placeholder)}`,

  // The lock wait is the store's queue in this process, and the busy timeout for other processes.
  beginStatements: () => ({ session: [], transaction: ['BEGIN IMMEDIATE'] }),

  createSchema(table) {
    const parts = identifierParts(table);
    const name = parts.at(-1)!;
    // An index lives in its table's schema, so SQLite qualifies the index name, not the table.
    const indexName = [...parts.slice(0, -1), `${name}_create_time`].map(quote).join('.');
    // Clustered on the unique key (WITHOUT ROWID): one B-tree per insert instead of a rowid
    // table plus a unique index. The create_time index lets prune find old rows without a scan.
    return [
      `CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (
  trans_type TEXT NOT NULL DEFAULT '',
  gid TEXT NOT NULL,
  branch_id TEXT NOT NULL,
  op TEXT NOT NULL,
  barrier_id TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (gid, branch_id, op, barrier_id)
) WITHOUT ROWID`,
      `CREATE INDEX IF NOT EXISTS ${indexName} ON ${quote(name)} (create_time)`,
    ];
  },

  pruneBatch: (table, placeholder = questionMark) =>
    `DELETE FROM ${quoteTable(table)} WHERE (gid, branch_id, op, barrier_id) IN (
  SELECT gid, branch_id, op, barrier_id FROM ${quoteTable(table)}
  WHERE ${expired(placeholder(1))} LIMIT ${placeholder(2)})`,

  // SQLite keeps no row count (sqlite_stat1 only after ANALYZE, and then per index): no estimate.
  stats: (table, placeholder = questionMark) => ({
    countUpTo: countUpTo(quoteTable(table), placeholder(1)),
    // SQLite reads MIN from the index only in the bare form `SELECT MIN(x) FROM t`: hence the subquery.
    oldestAge: `SELECT (julianday('now') - julianday((SELECT MIN(create_time) FROM ${quoteTable(table)}))) * 86400.0 AS age`,
    prunable: countUpTo(`${quoteTable(table)} WHERE ${expired(placeholder(1))}`, placeholder(2)),
    recentConsumers: recentConsumers(quoteTable(table), placeholder(1)),
  }),

  // better-sqlite3 names the code (SQLITE_BUSY_SNAPSHOT); node:sqlite throws ERR_SQLITE_ERROR with the
  // extended result code in `errcode`, whose low byte is the primary one (5 BUSY, 6 LOCKED).
  isRetryable: (error) =>
    someInChain(
      error,
      (e) =>
        (typeof e.code === 'string' && /^SQLITE_(BUSY|LOCKED)/.test(e.code)) ||
        (e.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number' && [5, 6].includes(e.errcode & 0xff)),
    ),
  endsTransaction: () => false,
  isMissingTable: (error) => someInChain(error, (e) => typeof e.message === 'string' && e.message.startsWith('no such table')),
};
