import {
  type Dialect,
  errorChain,
  identifierParts,
  INSERT_COLUMNS,
  keyCondition,
  questionMark,
  valuesList,
} from './dialect.js';

const quote = (part: string) => `\`${part}\``;
const quoteTable = (table: string) => identifierParts(table).map(quote).join('.');

// DATETIME has no zone: write and compare in UTC, so sessions with different time_zone settings
// (an ORM that sets +00:00, a cron job on the server's zone) agree on a row's age.
const NOW = 'UTC_TIMESTAMP()';

// 1213 deadlock (the transaction is already rolled back), 1205 lock wait timeout.
const RETRYABLE_ERRNOS = new Set([1213, 1205]);

export const mysqlDialect: Dialect = {
  name: 'mysql',
  defaultTable: 'dtm_barrier.barrier',
  quoteTable,

  // INSERT IGNORE demotes every error to a warning (truncation, NULL → ''), so the barrier
  // validates lengths before it gets here; ON DUPLICATE KEY UPDATE would report 1 for a duplicate.
  insertRows: (table, rowCount, placeholder = questionMark) =>
    `INSERT IGNORE INTO ${quoteTable(table)} ${INSERT_COLUMNS} VALUES ${valuesList(rowCount, placeholder, NOW)}`,

  // A locking read sees the latest committed row even when the caller's REPEATABLE READ
  // snapshot was taken before the conflicting row committed.
  selectReason: (table, placeholder = questionMark) =>
    `SELECT reason FROM ${quoteTable(table)} WHERE ${keyCondition(placeholder)} LOCK IN SHARE MODE`,

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
    `DELETE FROM ${quoteTable(table)} WHERE create_time < ${NOW} - INTERVAL ${placeholder(1)} SECOND ORDER BY create_time LIMIT ${placeholder(2)}`,

  isRetryable(error) {
    for (const e of errorChain(error)) {
      if (typeof e.errno === 'number' && RETRYABLE_ERRNOS.has(e.errno)) return true;
    }
    return false;
  },
};
