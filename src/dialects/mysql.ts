import {
  countUpTo,
  type Dialect,
  identifierParts,
  INSERT_COLUMNS,
  keyCondition,
  questionMark,
  someInChain,
  valuesList,
} from './dialect.js';

const quote = (part: string) => `\`${part}\``;
const quoteTable = (table: string) => identifierParts(table).map(quote).join('.');

// DATETIME has no zone: write and compare in UTC, so sessions with different time_zone settings
// (an ORM that sets +00:00, a cron job on the server's zone) agree on a row's age.
const NOW = 'UTC_TIMESTAMP()';

// 1213 deadlock (the transaction is already rolled back; on Galera also a write set that failed
// certification, at COMMIT or at the next statement), 1205 lock wait timeout, 3101 MySQL Group
// Replication's certification failure at COMMIT (rolled back).
const RETRYABLE_ERRNOS = new Set([1213, 1205, 3101]);
const DEADLOCK = 1213;
const PARSE_ERROR = 1064;
const NO_SUCH_TABLE = 1146;

// INSERT IGNORE demotes every error to a warning (truncation, NULL → ''), so the barrier
// validates lengths before it gets here; ON DUPLICATE KEY UPDATE would report 1 for a duplicate.
const insertRows = (table: string, rowCount: number, placeholder = questionMark) =>
  `INSERT IGNORE INTO ${quoteTable(table)} ${INSERT_COLUMNS} VALUES ${valuesList(rowCount, placeholder, NOW)}`;

/**
 * The widest a foreign writer's clock can be behind UTC: DTM's MySQL DDL fills create_time with
 * now(), in the writer's session time zone, and zones reach 12 h west of UTC. Prune keeps rows
 * that much longer, so a fresh row written at UTC-12 is never taken for an old one.
 */
const WIDEST_ZONE_OFFSET_SECONDS = 12 * 3600;

/** Rows older than the seconds parameter, with the zone margin: what prune deletes. */
const expired = (seconds: string) => `create_time < ${NOW} - INTERVAL (${seconds} + ${WIDEST_ZONE_OFFSET_SECONDS}) SECOND`;

export const mysqlDialect: Dialect = {
  name: 'mysql',
  defaultTable: 'dtm_barrier.barrier',
  quoteTable,

  insertRows,
  // MariaDB ≥ 10.5 returns the rows INSERT IGNORE inserted; MySQL has no RETURNING.
  insertRowsReturning: (table, rowCount, placeholder) => `${insertRows(table, rowCount, placeholder)} RETURNING op`,
  rejectsReturning: (error) => someInChain(error, (e) => e.errno === PARSE_ERROR),

  // A locking read sees the latest committed row even when the caller's REPEATABLE READ
  // snapshot was taken before the conflicting row committed.
  selectReason: (table, placeholder = questionMark) =>
    `SELECT reason FROM ${quoteTable(table)} WHERE ${keyCondition(placeholder)} LOCK IN SHARE MODE`,

  // The lock timeout is a session variable (MySQL has no per-transaction form), set once per
  // connection; SET TRANSACTION without SESSION applies to the next transaction only.
  // MariaDB (≥ 10.3) also ends a transaction left idle past idle_transaction_timeout (whole
  // seconds): a process that froze or a host that vanished while holding a barrier row would
  // otherwise hold it until wait_timeout (8 h). In MariaDB's executable comment, which MySQL (which
  // has no such variable) reads as a comment: one statement either way.
  beginStatements: ({ isolationLevel, lockTimeoutMs, idleTimeoutMs }) => ({
    session: [
      `SET SESSION innodb_lock_wait_timeout = ${Math.max(1, Math.ceil(lockTimeoutMs / 1000))}` +
        (idleTimeoutMs === false ? '' : `/*M!100300 , idle_transaction_timeout = ${Math.ceil(idleTimeoutMs / 1000)}*/`),
    ],
    transaction: [...(isolationLevel ? [`SET TRANSACTION ISOLATION LEVEL ${isolationLevel}`] : []), 'START TRANSACTION'],
  }),

  createSchema(table) {
    const parts = identifierParts(table);
    // DTM's layout (surrogate id, unique key): clustering on the key measured no faster on
    // InnoDB, and DTM's own tools then share the table. Unlike DTM's, the key columns compare
    // bytes (utf8mb4_bin): under the default _ci collation 'Order-1', 'order-1' and 'Ordér-1'
    // would be one key, and the second gid's work would be skipped as a duplicate (trailing
    // spaces, which every MySQL collation pads away, are refused with the input). No index on
    // update_time: nothing reads it, and every insert would pay for it.
    return [
      ...(parts.length === 2 ? [`CREATE DATABASE IF NOT EXISTS ${quote(parts[0]!)} DEFAULT CHARACTER SET utf8mb4`] : []),
      `CREATE TABLE IF NOT EXISTS ${quoteTable(table)} (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  trans_type VARCHAR(45) NOT NULL DEFAULT '',
  gid VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  branch_id VARCHAR(128) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  op VARCHAR(45) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  barrier_id VARCHAR(45) COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  reason VARCHAR(45) NOT NULL DEFAULT '' COMMENT 'the op that inserted this row',
  create_time DATETIME DEFAULT CURRENT_TIMESTAMP,
  update_time DATETIME DEFAULT CURRENT_TIMESTAMP,
  KEY (create_time),
  UNIQUE KEY (gid, branch_id, op, barrier_id)
) DEFAULT CHARACTER SET utf8mb4`,
    ];
  },

  // Oldest first along the create_time index: a short range lock at the old end of the table,
  // far from where new rows land.
  pruneBatch: (table, placeholder = questionMark) =>
    `DELETE FROM ${quoteTable(table)} WHERE ${expired(placeholder(1))} ORDER BY create_time LIMIT ${placeholder(2)}`,

  stats(table, placeholder = questionMark) {
    const parts = identifierParts(table);
    const schema = parts.length === 2 ? `'${parts[0]}'` : 'DATABASE()';
    return {
      // InnoDB's TABLE_ROWS: an estimate from sampled pages, which information_schema may cache.
      estimate: `SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema} AND TABLE_NAME = '${parts.at(-1)}'`,
      countUpTo: countUpTo(quoteTable(table), placeholder(1)),
      oldestAge: `SELECT TIMESTAMPDIFF(SECOND, (SELECT MIN(create_time) FROM ${quoteTable(table)}), ${NOW}) AS age`,
      prunable: countUpTo(`${quoteTable(table)} WHERE ${expired(placeholder(1))}`, placeholder(2)),
      // The create_time index holds the primary key, not branch_id: the newest ids come from the index
      // alone, then each row by its key. Asked for branch_id directly, MariaDB scans the whole table.
      recentConsumers:
        `SELECT b.branch_id, COUNT(*) AS n FROM (SELECT id FROM ${quoteTable(table)} ORDER BY create_time DESC LIMIT ${placeholder(1)}) newest ` +
        `JOIN ${quoteTable(table)} b ON b.id = newest.id WHERE b.branch_id LIKE '%/%' GROUP BY b.branch_id ORDER BY n DESC, b.branch_id LIMIT 20`,
    };
  },

  isRetryable: (error) => someInChain(error, (e) => typeof e.errno === 'number' && RETRYABLE_ERRNOS.has(e.errno)),
  endsTransaction: (error) => someInChain(error, (e) => e.errno === DEADLOCK),
  isMissingTable: (error) => someInChain(error, (e) => e.errno === NO_SUCH_TABLE),
};
