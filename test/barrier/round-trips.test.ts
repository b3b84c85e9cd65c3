/**
 * The statements (round trips) each op sends, counted on the real servers per engine and op kind: a
 * deterministic guard for the hot path, in place of a timed test. A change that adds a statement to
 * any path fails here; update the table only with a reason (and the benchmark figures).
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { type SqliteDatabase, sqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, type BarrierStore } from '../../src/index.js';
import { hasServer } from '../support/servers.js';
import { type MysqlPool, mysqlPool, type PostgresPool, postgresPool } from '../support/server-harness.js';
import { openTempDb } from '../stores/sqlite-harness.js';
import { countingPostgresPool } from '../support/counting.js';

type Case = 'forward applied' | 'forward duplicate' | 'dangling' | 'compensation applied' | 'null compensation' | 'compensation duplicate' | 'check-back';

/**
 * Statements per call, BEGIN and COMMIT included, no business statement. PostgreSQL sends BEGIN and
 * its SET LOCALs (lock, idle and statement timeouts) as one simple query; MySQL sets the session lock timeout once per connection (not
 * counted: each store here reuses one warmed connection). Without RETURNING (MySQL servers) a
 * compensation takes one more.
 */
const EXPECTED: Record<string, Record<Case, number>> = {
  postgres: { 'forward applied': 3, 'forward duplicate': 4, dangling: 4, 'compensation applied': 3, 'null compensation': 3, 'compensation duplicate': 3, 'check-back': 4 },
  mysql: { 'forward applied': 3, 'forward duplicate': 4, dangling: 4, 'compensation applied': 3, 'null compensation': 3, 'compensation duplicate': 3, 'check-back': 4 },
  'mysql without RETURNING': { 'forward applied': 3, 'forward duplicate': 4, dangling: 4, 'compensation applied': 4, 'null compensation': 4, 'compensation duplicate': 4, 'check-back': 4 },
  sqlite: { 'forward applied': 3, 'forward duplicate': 4, dangling: 4, 'compensation applied': 3, 'null compensation': 3, 'compensation duplicate': 3, 'check-back': 4 },
};

/** Runs each case once on `store` and returns the statements the driver saw for it. */
async function measure(store: BarrierStore<unknown>, sent: string[]): Promise<Record<Case, number>> {
  const saga = (gid: string, op: 'action' | 'compensate') => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
  const counted = async (run: () => Promise<unknown>) => {
    sent.length = 0;
    await run();
    return sent.length;
  };
  await saga(randomUUID(), 'action').call(store, () => 'warm');
  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
  return {
    'forward applied': await counted(() => saga(a, 'action').call(store, () => 1)),
    'forward duplicate': await counted(() => saga(a, 'action').call(store, () => 1)),
    'compensation applied': await counted(() => saga(a, 'compensate').call(store, () => 1)),
    'compensation duplicate': await counted(() => saga(a, 'compensate').call(store, () => 1)),
    'null compensation': await counted(() => saga(b, 'compensate').call(store, () => 1)),
    dangling: await counted(() => saga(b, 'action').call(store, () => 1)),
    'check-back': await counted(() => Barrier.forMessage(c).queryPrepared(store)),
  };
}

describe('round trips per op', () => {
  it('sqlite', async () => {
    const { db, dir } = openTempDb();
    const sent: string[] = [];
    // Count executions, not preparations: the store caches its statements.
    const counting: SqliteDatabase = {
      get name() {
        return db.name;
      },
      memory: false,
      get inTransaction() {
        return db.inTransaction;
      },
      prepare: (sql) => {
        const statement = db.prepare(sql);
        return {
          run: (...params) => (sent.push(sql), statement.run(...params)),
          all: (...params) => (sent.push(sql), statement.all(...params)),
        };
      },
    };
    try {
      const store = sqliteStore(counting);
      await store.ensureSchema();
      expect(await measure(store as BarrierStore<unknown>, sent)).toEqual(EXPECTED.sqlite);
    } finally {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(!hasServer('postgres'))('postgres', () => {
    let pool: PostgresPool;
    beforeAll(async () => {
      pool = postgresPool({ max: 1 });
      await postgresStore(pool, { table: 'h3_trips.barrier' }).ensureSchema();
    });
    afterAll(() => pool?.end());

    it('sends what the table says', async () => {
      const sent: string[] = [];
      const counting = countingPostgresPool(pool, sent);
      const store = postgresStore(counting, { table: 'h3_trips.barrier' });
      expect(await measure(store as BarrierStore<unknown>, sent)).toEqual(EXPECTED.postgres);
      // The server-side bounds ride in BEGIN's round trip, as the benchmark's hand-written twin sends them.
      expect(sent[0]).toBe('BEGIN; SET LOCAL lock_timeout = 2000; SET LOCAL idle_in_transaction_session_timeout = 11000; SET LOCAL statement_timeout = 11000');
    });
  });

  describe.skipIf(!hasServer('mysql'))('mysql', () => {
    let pool: MysqlPool;
    beforeAll(async () => {
      pool = mysqlPool({ connectionLimit: 1 });
      await mysqlStore(pool, { table: 'h3_trips.barrier' }).ensureSchema();
    });
    afterAll(() => pool?.end());

    it.each([
      ['mysql', undefined],
      ['mysql without RETURNING', false],
    ] as const)('%s sends what the table says', async (name, returning) => {
      const sent: string[] = [];
      // Counted on the driver's callback connection, where every statement arrives: the store sends its
      // own there directly (no stack capture per statement), the promise connection forwards the rest.
      const counted = new WeakSet<object>();
      const counting = {
        getConnection: async () => {
          const connection = await pool.getConnection();
          const core = connection.connection as unknown as { query: (...args: unknown[]) => unknown };
          if (!counted.has(core)) {
            const query = core.query;
            core.query = (...args: unknown[]) => {
              const [statement] = args as [string | { sql: string }];
              sent.push(typeof statement === 'string' ? statement : statement.sql);
              return query.apply(core, args);
            };
            counted.add(core);
          }
          return connection;
        },
      };
      const store = mysqlStore(counting, { table: 'h3_trips.barrier', ...(returning === undefined ? {} : { returning }) });
      expect(await measure(store as BarrierStore<unknown>, sent)).toEqual(EXPECTED[name]);
    });
  });
});
