/**
 * The barrier written by hand on the raw driver, and nothing of txbarrier: exactly the statements
 * the SDK sends for the same op on the same engine (see test/barrier/round-trips.test.ts): the same BEGIN
 * with its lock timeout, the same insert-ignore (both rows with `RETURNING op` for a compensation),
 * the business UPDATE, and the same COMMIT check. The cost worker and the front servers run it.
 */
import type { PoolConnection } from 'mysql2/promise';
import type { Driver, Op, OpArgs, WorkerOp } from './worker-common.js';

const COLUMNS = '(trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time)';
const RETRYABLE_POSTGRES = new Set(['40001', '40P01', '55P03', '57014']);
const RETRYABLE_MYSQL = new Set([1205, 1213]);

/** The two rows of a compensation (its action's first) or the one row of an action, flattened. */
const rowsOf = (op: WorkerOp, gid: string) =>
  op === 'action' ? ['saga', gid, '01', 'action', '01', 'action'] : ['saga', gid, '01', 'action', '01', 'compensate', 'saga', gid, '01', 'compensate', '01', 'compensate'];

/** Exactly one row in for an action; for a compensation, its own row (the action's was committed before). */
function applied(op: WorkerOp, inserted: number, returned?: { op: unknown }[]): boolean {
  if (op === 'action') return inserted === 1;
  return returned !== undefined && returned.length === 1 && returned[0]!.op === 'compensate';
}

/** The op of `args` on `driver`, written by hand; resolves to true when it met a database conflict and must be retried. */
export function handOp(driver: Driver, args: OpArgs): Op {
  const { table, op } = args;
  switch (driver.engine) {
    case 'postgres': {
      const pool = driver.handle;
      const row = (first: number) => `($${first}, $${first + 1}, $${first + 2}, $${first + 3}, $${first + 4}, $${first + 5}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`;
      const insert =
        `INSERT INTO "${table}" ${COLUMNS} VALUES ${op === 'action' ? row(1) : `${row(1)}, ${row(7)}`} ` +
        `ON CONFLICT (gid, branch_id, op, barrier_id) DO NOTHING${op === 'action' ? '' : ' RETURNING op'}`;
      const begin = 'BEGIN; SET LOCAL lock_timeout = 2000; SET LOCAL idle_in_transaction_session_timeout = 11000; SET LOCAL statement_timeout = 11000';
      return async (gid, account, amount) => {
        const client = await pool.connect();
        try {
          await client.query(begin);
          const result = await client.query(insert, rowsOf(op, gid));
          if (!applied(op, result.rowCount ?? 0, result.rows)) throw new Error(`hand-written ${op} of ${gid} did not apply`);
          await driver.update(client, account, amount);
          if ((await client.query('COMMIT')).command === 'ROLLBACK') throw new Error('transaction rolled back at COMMIT');
          client.release();
          return false;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          client.release(true);
          if (RETRYABLE_POSTGRES.has((error as { code?: string }).code ?? '')) return true;
          throw error;
        }
      };
    }
    case 'mysql': {
      const pool = driver.handle;
      const row = '(?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(), UTC_TIMESTAMP())';
      const insert = `INSERT IGNORE INTO \`${table}\` ${COLUMNS} VALUES ${op === 'action' ? row : `${row}, ${row} RETURNING op`}`;
      const configured = new WeakSet<object>();
      return async (gid, account, amount) => {
        const connection: PoolConnection = await pool.getConnection();
        try {
          if (!configured.has(connection.connection)) {
            await connection.query('SET SESSION innodb_lock_wait_timeout = 2/*M!100300 , idle_transaction_timeout = 11*/');
            configured.add(connection.connection);
          }
          await connection.query('START TRANSACTION');
          const [result] = (await connection.query(insert, rowsOf(op, gid))) as unknown as [{ affectedRows: number } & { op: unknown }[]];
          if (!applied(op, result.affectedRows, op === 'action' ? undefined : result)) throw new Error(`hand-written ${op} of ${gid} did not apply`);
          await driver.update(connection, account, amount);
          await connection.query('COMMIT');
          connection.release();
          return false;
        } catch (error) {
          connection.destroy();
          if (RETRYABLE_MYSQL.has((error as { errno?: number }).errno ?? 0)) return true;
          throw error;
        }
      };
    }
    case 'sqlite': {
      const db = driver.handle;
      const row = '(?, ?, ?, ?, ?, ?, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)';
      const insert = db.prepare(`INSERT INTO "${table}" ${COLUMNS} VALUES ${op === 'action' ? row : `${row}, ${row}`} ON CONFLICT DO NOTHING${op === 'action' ? '' : ' RETURNING op'}`);
      const begin = db.prepare('BEGIN IMMEDIATE');
      const commit = db.prepare('COMMIT');
      const rollback = db.prepare('ROLLBACK');
      // One connection: transactions take turns, as the SDK's store queues them.
      let tail: Promise<unknown> = Promise.resolve();
      const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
        const turn = tail.then(work);
        tail = turn.catch(() => undefined);
        return turn;
      };
      return (gid, account, amount) =>
        exclusive(async () => {
          begin.run();
          try {
            const ok =
              op === 'action' ? applied(op, Number(insert.run(rowsOf(op, gid)).changes)) : applied(op, 0, insert.all(rowsOf(op, gid)) as { op: unknown }[]);
            if (!ok) throw new Error(`hand-written ${op} of ${gid} did not apply`);
            await driver.update(db, account, amount);
            commit.run();
            return false;
          } catch (error) {
            if (db.inTransaction) rollback.run();
            if ((error as { code?: string }).code === 'SQLITE_BUSY') return true;
            throw error;
          }
        });
    }
  }
}

