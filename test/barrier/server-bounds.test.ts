/**
 * The server's own bounds on a barrier transaction, for when the client cannot end it: a process
 * frozen while it holds a row (MariaDB's idle_transaction_timeout), and a statement the server
 * keeps running after the client's timeout closed the socket (PostgreSQL's statement_timeout).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { Barrier, BarrierOngoing, BarrierTimeout } from '../../src/index.js';
import { type MysqlPool, mysqlPool, type PostgresPool, postgresPool, waitUntil } from '../support/server-harness.js';
import { MYSQL_URL } from '../../servers/index.js';
import { hasServer, testsEngine } from '../support/servers.js';

const table = `bounds_${randomUUID().replaceAll('-', '').slice(0, 10)}`;

if (testsEngine('mysql')) describe.skipIf(!hasServer('mysql'))('MariaDB ends the transaction of a frozen process', () => {
  let pool: MysqlPool;
  beforeAll(async () => {
    pool = mysqlPool();
    await mysqlStore(pool, { table }).ensureSchema();
  });
  afterAll(async () => {
    await pool?.query(`DROP TABLE IF EXISTS \`${table}\``);
    await pool?.end();
  });

  it('releases a barrier row held by a SIGSTOPped process at transactionTimeout + 1 s, so the retry applies', async () => {
    const [[{ version }]] = (await pool.query('SELECT VERSION() AS version')) as unknown as [[{ version: string }]];
    // MySQL has no idle-transaction timeout: there the row stays held until wait_timeout.
    if (!/mariadb/i.test(version)) return;
    const gid = randomUUID();
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/barrier/frozen-holder.ts', MYSQL_URL, table, gid], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      expect(line.toString()).toBe('holding\n');
      child.kill('SIGSTOP');
      const frozen = Date.now();
      const store = mysqlStore(pool, { table, lockTimeout: 500 });
      let result: unknown;
      while (Date.now() - frozen < 8000 && result === undefined) {
        result = await Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' })
          .call(store, () => 'applied by the retry')
          .catch((error: unknown) => {
            if (error instanceof BarrierOngoing) return undefined;
            throw error;
          });
      }
      expect(result).toEqual({ outcome: 'applied', value: 'applied by the retry' });
      // The holder's transactionTimeout is 1000 ms: the server gave up on it after 2 s idle.
      expect(Date.now() - frozen).toBeLessThan(5000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe.skipIf(!hasServer('postgres'))("PostgreSQL ends a timed-out transaction's statement", () => {
  let pool: PostgresPool;
  beforeAll(async () => {
    pool = postgresPool();
    await postgresStore(pool, { table }).ensureSchema();
  });
  afterAll(async () => {
    await pool?.query(`DROP TABLE IF EXISTS "${table}"`);
    await pool?.end();
  });

  it('cancels the statement at transactionTimeout + 1 s, where closing the socket left it running', async () => {
    const store = postgresStore(pool, { table, transactionTimeout: 500 });
    const tag = randomUUID();
    let late: unknown;
    // The statement's own failure comes after the timeout (its socket closed): kept here, not left to a process warning.
    const call = Barrier.from({ transType: 'saga', gid: randomUUID(), branchId: '01', op: 'action' }).call(store, (client) =>
      client.query(`SELECT pg_sleep(15) /* ${tag} */`).then(
        () => undefined,
        (error: unknown) => void (late = error),
      ),
    );
    await expect(call).rejects.toBeInstanceOf(BarrierTimeout);
    await waitUntil('the closed socket failed the statement', async () => late !== undefined);
    expect(String(late)).toMatch(/Connection terminated/);
    const running = async () =>
      (
        await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE $1", [
          `%pg_sleep(15) /* ${tag}%`,
        ])
      ).rows[0]!.n;
    await waitUntil('the backend stopped its statement', async () => (await running()) === 0, { timeoutMs: 4000 });
  });
});
