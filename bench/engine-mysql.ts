import mysql from 'mysql2/promise';
import { mysqlStore } from '../adapters/stores/mysql.js';
import type { BarrierStore } from '../src/index.js';
import { ACCOUNTS, type BenchEngine, keyStep, POOL_SIZE, type Transfer } from './engine.js';
import { MYSQL_URL } from '../servers/index.js';

type Connection = mysql.PoolConnection;

const COLUMNS = '(trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time)';

const COLUMN_DEFINITIONS = `
  trans_type varchar(45) default '', gid varchar(128) default '', branch_id varchar(128) default '',
  op varchar(45) default '', barrier_id varchar(45) default '', reason varchar(45) default '',
  create_time datetime DEFAULT now(), update_time datetime DEFAULT now()`;

/** DTM's MySQL DDL (sqls/dtmcli.barrier.mysql.sql), renamed; and the same columns clustered on the key. */
function layoutTable(table: string, layout: 'dtm' | 'clustered'): string {
  return layout === 'dtm'
    ? `CREATE TABLE \`${table}\` (id bigint(22) PRIMARY KEY AUTO_INCREMENT, ${COLUMN_DEFINITIONS},
  key(create_time), key(update_time), UNIQUE key(gid, branch_id, op, barrier_id))`
    : `CREATE TABLE \`${table}\` (${COLUMN_DEFINITIONS},
  PRIMARY KEY (gid, branch_id, op, barrier_id), key(create_time))`;
}

/** mysql2 on a pool of 16, InnoDB's default durability (innodb_flush_log_at_trx_commit=1). */
export async function mysqlEngine(prefix: string): Promise<BenchEngine<Connection>> {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: POOL_SIZE });
  const accounts = `${prefix}accounts`;
  const update = `UPDATE \`${accounts}\` SET balance = balance + ? WHERE id = ?`;
  await pool.query(`DROP TABLE IF EXISTS \`${accounts}\``);
  await pool.query(`CREATE TABLE \`${accounts}\` (id int PRIMARY KEY, balance bigint NOT NULL)`);
  await pool.query(`INSERT INTO \`${accounts}\` SELECT seq, 0 FROM seq_1_to_${ACCOUNTS}`);
  const [[{ version, flush }]] = (await pool.query(
    'SELECT version() AS version, @@innodb_flush_log_at_trx_commit AS flush',
  )) as unknown as [[{ version: string; flush: number }]];
  const stores = new Map<string, BarrierStore<Connection>>();
  const store = (table: string) => {
    let made = stores.get(table);
    if (!made) stores.set(table, (made = mysqlStore(pool, { table })));
    return made;
  };

  /** START TRANSACTION … COMMIT on a pooled connection, as plainly as the driver allows. */
  const transaction = async <T>(work: (connection: Connection) => Promise<T>): Promise<T> => {
    const connection = await pool.getConnection();
    try {
      await connection.query('START TRANSACTION');
      const result = await work(connection);
      await connection.query('COMMIT');
      connection.release();
      return result;
    } catch (error) {
      // The state of a connection whose statement failed is not worth guessing at here.
      connection.destroy();
      throw error;
    }
  };
  const applyTransfers = async (connection: Connection, transfers: readonly Transfer[]) => {
    for (const { account, amount } of transfers) await connection.query(update, [amount, account]);
  };
  const dropTable = async (table: string) => {
    await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
  };

  return {
    name: 'mysql',
    prefix,
    version: `MariaDB ${version} (InnoDB, innodb_flush_log_at_trx_commit=${flush})`,
    layouts: ['default', 'dtm', 'clustered'],

    async createBarrierTable(table, layout) {
      await dropTable(table);
      if (layout === 'default') return store(table).ensureSchema();
      await pool.query(layoutTable(table, layout === 'clustered' ? 'clustered' : 'dtm'));
    },
    dropTable,
    async rowCount(table) {
      const [rows] = (await pool.query(`SELECT count(*) AS n FROM \`${table}\``)) as unknown as [{ n: number }[]];
      return Number(rows[0]!.n);
    },
    async bulkLoad(table, from, to, total) {
      await pool.query(
        `INSERT INTO \`${table}\` ${COLUMNS}
         SELECT 'saga', concat(lpad(lower(hex(seq * ?)), 8, '0'), '-', seq), '01', 'action', '01', 'action',
                now() - interval 30 day, now() - interval 30 day
         FROM seq_${from}_to_${to - 1}`,
        [keyStep(total)],
      );
    },
    async settle(table) {
      await pool.query(`ANALYZE TABLE \`${table}\``);
    },
    store,
    business: applyTransfers,
    bare: (transfers) => transaction((connection) => applyTransfers(connection, transfers)),
    async close() {
      await pool.query(`DROP TABLE IF EXISTS \`${accounts}\``);
      await pool.end();
    },
  };
}
