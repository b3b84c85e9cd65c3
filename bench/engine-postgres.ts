import pg from 'pg';
import { postgresStore } from '../adapters/stores/postgres.js';
import type { BarrierStore } from '../src/index.js';
import { ACCOUNTS, type BenchEngine, keyStep, POOL_SIZE, type Transfer } from './engine.js';
import { POSTGRES_URL } from '../servers/index.js';

type Client = pg.PoolClient;

const COLUMNS = '(trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time)';


/** DTM's Postgres DDL (sqls/dtmcli.barrier.postgres.sql), renamed; `indexed` adds the timestamp indexes its MySQL DDL has. */
function dtmTable(table: string, indexed: boolean): string[] {
  return [
    `CREATE SEQUENCE "${table}_seq"`,
    `CREATE TABLE "${table}" (
  id bigint NOT NULL DEFAULT NEXTVAL ('${table}_seq'),
  trans_type varchar(45) default '', gid varchar(128) default '', branch_id varchar(128) default '',
  op varchar(45) default '', barrier_id varchar(45) default '', reason varchar(45) default '',
  create_time timestamp(0) with time zone DEFAULT NULL, update_time timestamp(0) with time zone DEFAULT NULL,
  PRIMARY KEY(id),
  CONSTRAINT "${table}_uniq" unique(gid, branch_id, op, barrier_id))`,
    ...(indexed
      ? [`CREATE INDEX ON "${table}" (create_time)`, `CREATE INDEX ON "${table}" (update_time)`]
      : []),
  ];
}

/** node-postgres on a pool of 16, the server's default durability (fsync, synchronous_commit on). */
export async function postgresEngine(prefix: string): Promise<BenchEngine<Client>> {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: POOL_SIZE });
  const accounts = `${prefix}accounts`;
  const update = `UPDATE "${accounts}" SET balance = balance + $1 WHERE id = $2`;
  await pool.query(`DROP TABLE IF EXISTS "${accounts}"`);
  await pool.query(`CREATE TABLE "${accounts}" (id int PRIMARY KEY, balance bigint NOT NULL)`);
  await pool.query(`INSERT INTO "${accounts}" SELECT i, 0 FROM generate_series(1, $1::int) i`, [ACCOUNTS]);
  const version = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  const stores = new Map<string, BarrierStore<Client>>();
  const store = (table: string) => {
    let made = stores.get(table);
    if (!made) stores.set(table, (made = postgresStore(pool, { table })));
    return made;
  };

  /** BEGIN … COMMIT on a pooled client, as plainly as the driver allows. */
  const transaction = async <T>(work: (client: Client) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      // COMMIT of an aborted transaction answers ROLLBACK instead of failing.
      if ((await client.query('COMMIT')).command === 'ROLLBACK') throw new Error('transaction rolled back at COMMIT');
      client.release();
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw error;
    }
  };
  const applyTransfers = async (client: Client, transfers: readonly Transfer[]) => {
    for (const { account, amount } of transfers) await client.query(update, [amount, account]);
  };
  const dropTable = async (table: string) => {
    await pool.query(`DROP TABLE IF EXISTS "${table}"`);
    await pool.query(`DROP SEQUENCE IF EXISTS "${table}_seq"`);
  };

  return {
    name: 'postgres',
    prefix,
    version: `PostgreSQL ${version} (fsync=on, synchronous_commit=on)`,
    layouts: ['default', 'dtm', 'dtm-indexed', 'key-only', 'brin'],

    async createBarrierTable(table, layout) {
      await dropTable(table);
      if (layout === 'default' || layout === 'key-only' || layout === 'brin') {
        await store(table).ensureSchema();
        if (layout !== 'default') await pool.query(`DROP INDEX "${table}_create_time"`);
        if (layout === 'brin') await pool.query(`CREATE INDEX "${table}_create_time" ON "${table}" USING brin (create_time)`);
        return;
      }
      for (const statement of dtmTable(table, layout === 'dtm-indexed')) await pool.query(statement);
    },
    dropTable,
    async rowCount(table) {
      return Number((await pool.query(`SELECT count(*) AS n FROM "${table}"`)).rows[0].n);
    },
    async bulkLoad(table, from, to, total) {
      await pool.query(
        `INSERT INTO "${table}" ${COLUMNS}
         SELECT 'saga', lpad(to_hex(i * $3::bigint), 8, '0') || '-' || i, '01', 'action', '01', 'action',
                now() - interval '30 days', now() - interval '30 days'
         FROM generate_series($1::bigint, $2::bigint) i`,
        [from, to - 1, keyStep(total)],
      );
    },
    async settle(table) {
      await pool.query(`VACUUM ANALYZE "${table}"`);
    },
    store,
    business: applyTransfers,
    bare: (transfers) => transaction((client) => applyTransfers(client, transfers)),
    async close() {
      await pool.query(`DROP TABLE IF EXISTS "${accounts}"`);
      await pool.end();
    },
  };
}
