/**
 * What is particular to PostgreSQL 18: that this run's server is 18 at all, and `transaction_timeout`
 * (new in 17), which the store leaves to the server's configuration (docs/stores.md says why) but
 * must survive: a session the server ends under a barrier transaction commits nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../../adapters/stores/postgres.js';
import { Barrier } from '../../../src/index.js';
import { createPostgresNotes, type PostgresPool, postgresNotes, postgresPool } from '../../support/server-harness.js';

const table = `pg18_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const notes = `${table}_notes`;
const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });

describe('PostgreSQL 18', () => {
  let pool: PostgresPool;
  beforeAll(async () => {
    pool = postgresPool();
    await postgresStore(pool, { table }).ensureSchema();
    await createPostgresNotes(pool, notes);
  });
  afterAll(async () => {
    await pool?.query(`DROP TABLE IF EXISTS "${table}", "${notes}"`);
    await pool?.end();
  });
  const record = (client: { query(sql: string, params: unknown[]): Promise<unknown> }, gid: string) =>
    client.query(`INSERT INTO "${notes}" (gid, note) VALUES ($1, 'action')`, [gid]);

  it('is the server this run tests', async () => {
    const { rows } = await pool.query<{ version: number }>("SELECT current_setting('server_version_num')::int AS version");
    expect(Math.floor(rows[0]!.version / 10_000), 'TXBARRIER_POSTGRES_URL must name PostgreSQL 18: run `npm run test:postgres-18`').toBe(18);
  });

  it('bounds a barrier transaction with the settings every version has, and leaves transaction_timeout as the server has it', async () => {
    const store = postgresStore(pool, { table, transactionTimeout: 4000, lockTimeout: 1500 });
    const settings = await store.transaction((connection) =>
      connection.select(
        `SELECT current_setting('transaction_timeout') AS transaction, current_setting('idle_in_transaction_session_timeout') AS idle,
                current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock`,
        [],
      ),
    );
    expect(settings).toEqual([{ transaction: '0', idle: '5s', statement: '5s', lock: '1500ms' }]);
  });

  it('fails a call whose transaction outlives the server’s transaction_timeout, commits nothing, and the retry applies', async () => {
    // As an administrator sets it for a role or a database; here for this pool's sessions.
    const bounded = postgresPool({ max: 1, options: '-c transaction_timeout=1000' });
    try {
      const store = postgresStore(bounded, { table });
      const gid = randomUUID();
      const call = action(gid).call(store, async (client) => {
        await record(client, gid);
        // A slow call elsewhere, past the server's bound: the server ends the session (25P04).
        await new Promise((resolve) => setTimeout(resolve, 2500));
      });
      await expect(call).rejects.toThrow();
      expect(await postgresNotes(pool, notes, gid)).toEqual([]);
      expect((await pool.query(`SELECT 1 FROM "${table}" WHERE gid = $1`, [gid])).rows).toEqual([]);
      // The dead connection was not pooled: the pool of one opens another, and the retry applies.
      expect(await action(gid).call(store, async (client) => void (await record(client, gid)))).toEqual({ outcome: 'applied', value: undefined });
      expect(await postgresNotes(pool, notes, gid)).toEqual(['action']);
    } finally {
      await bounded.end();
    }
  });
});
