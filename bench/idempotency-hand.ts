/**
 * An idempotency key written by hand on the raw driver, and nothing of txbarrier: for a new key,
 * exactly the statements `idempotentRoute` sends (test/idempotency/keys.test.ts counts PostgreSQL's),
 * in the store's transaction shape (bench/hand-barrier.ts: PostgreSQL's BEGIN with its SET LOCALs,
 * MariaDB's session lock wait once per connection, SQLite's BEGIN IMMEDIATE in turn on one
 * connection): claim the key row without waiting, run the business UPDATE, store the response,
 * commit. A key already there answers `taken` (the benchmark sends none). The idempotency
 * benchmark's hand-written server runs it.
 */
import type { PoolConnection } from 'mysql2/promise';
import type { Driver } from './worker-common.js';

/** The row a new key writes: its identity, the request's fingerprint, then the response stored beside the work. */
export interface KeyRow {
  scope: string;
  key: string;
  fingerprint: string;
  lifetimeMs: number;
  status: number;
  headers: string;
  body: Buffer;
}

/** Claims `row`'s key, runs `work` in the same transaction, stores the response; `taken` if the key was there. */
export type KeyedTransaction = (row: KeyRow, work: (tx: unknown) => unknown) => Promise<'stored' | 'taken'>;

const COLUMNS = '(scope, idem_key, fingerprint, created_at, expires_at)';

export function handKeyed(driver: Driver, table: string): KeyedTransaction {
  switch (driver.engine) {
    case 'postgres': {
      const pool = driver.handle;
      const begin = 'BEGIN; SET LOCAL lock_timeout = 2000; SET LOCAL idle_in_transaction_session_timeout = 11000; SET LOCAL statement_timeout = 11000';
      const claim =
        "WITH no_wait AS (SELECT set_config('txbarrier.lock_timeout', current_setting('lock_timeout'), true), set_config('lock_timeout', '1ms', true)) " +
        `INSERT INTO "${table}" ${COLUMNS} SELECT $1, $2, $3, $4::bigint, $5::bigint FROM no_wait ON CONFLICT (scope, idem_key) DO NOTHING ` +
        "RETURNING set_config('lock_timeout', current_setting('txbarrier.lock_timeout'), true)";
      const complete = `UPDATE "${table}" SET status = $1, headers = $2, body = $3 WHERE scope = $4 AND idem_key = $5`;
      return async (row, work) => {
        const client = await pool.connect();
        try {
          await client.query(begin);
          const now = Date.now();
          if ((await client.query(claim, [row.scope, row.key, row.fingerprint, now, now + row.lifetimeMs])).rowCount !== 1) {
            await client.query('ROLLBACK');
            client.release();
            return 'taken';
          }
          await work(client);
          await client.query(complete, [row.status, row.headers, row.body, row.scope, row.key]);
          if ((await client.query('COMMIT')).command === 'ROLLBACK') throw new Error('transaction rolled back at COMMIT');
          client.release();
          return 'stored';
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          client.release(true);
          throw error;
        }
      };
    }
    case 'mysql': {
      const pool = driver.handle;
      const claim = `SET STATEMENT innodb_lock_wait_timeout = 0 FOR INSERT IGNORE INTO \`${table}\` ${COLUMNS} VALUES (?, ?, ?, ?, ?)`;
      const complete = `UPDATE \`${table}\` SET status = ?, headers = ?, body = ? WHERE scope = ? AND idem_key = ?`;
      const configured = new WeakSet<object>();
      return async (row, work) => {
        const connection: PoolConnection = await pool.getConnection();
        try {
          if (!configured.has(connection.connection)) {
            await connection.query('SET SESSION innodb_lock_wait_timeout = 2/*M!100300 , idle_transaction_timeout = 11*/');
            configured.add(connection.connection);
          }
          await connection.query('START TRANSACTION');
          const now = Date.now();
          const [claimed] = (await connection.query(claim, [row.scope, row.key, row.fingerprint, now, now + row.lifetimeMs])) as unknown as [{ affectedRows: number }];
          if (claimed.affectedRows !== 1) {
            await connection.query('ROLLBACK');
            connection.release();
            return 'taken';
          }
          await work(connection);
          await connection.query(complete, [row.status, row.headers, row.body, row.scope, row.key]);
          await connection.query('COMMIT');
          connection.release();
          return 'stored';
        } catch (error) {
          connection.destroy();
          throw error;
        }
      };
    }
    case 'sqlite': {
      const db = driver.handle;
      const claim = db.prepare(`INSERT INTO "${table}" ${COLUMNS} VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`);
      const complete = db.prepare(`UPDATE "${table}" SET status = ?, headers = ?, body = ? WHERE scope = ? AND idem_key = ?`);
      const [begin, commit, rollback] = ['BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK'].map((sql) => db.prepare(sql)) as [typeof claim, typeof claim, typeof claim];
      // One connection: transactions take turns, as the SDK's store queues them; a key in flight is answered from memory, as the SDK does.
      const inFlight = new Set<string>();
      let tail: Promise<unknown> = Promise.resolve();
      return (row, work) => {
        const id = `${row.scope}\u0000${row.key}`;
        if (inFlight.has(id)) return Promise.resolve('taken');
        inFlight.add(id);
        const turn = tail.then(async (): Promise<'stored' | 'taken'> => {
          begin.run();
          try {
            const now = Date.now();
            if (claim.run(row.scope, row.key, row.fingerprint, now, now + row.lifetimeMs).changes !== 1) {
              rollback.run();
              return 'taken';
            }
            await work(db);
            complete.run(row.status, row.headers, row.body, row.scope, row.key);
            commit.run();
            return 'stored';
          } catch (error) {
            if (db.inTransaction) rollback.run();
            throw error;
          }
        });
        tail = turn.catch(() => undefined);
        return turn.finally(() => inFlight.delete(id));
      };
    }
  }
}
