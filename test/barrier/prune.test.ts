/**
 * `store.prune` on every engine: only rows past the retention, in bounded batches along the
 * create_time index, refusing a too-short retention, and harmless to traffic running meanwhile.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, BarrierConfigError, type BarrierStore } from '../../src/index.js';
import { mysqlPool, postgresPool } from '../support/server-harness.js';
import { hasServer, testsEngine } from '../support/servers.js';
import { openTempDb } from '../stores/sqlite-harness.js';

const DAY = 86_400;

interface PruneEngine {
  store: BarrierStore<unknown>;
  /** Runs raw SQL outside any barrier transaction. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** The engine's placeholder for the i-th parameter. */
  param(index: number): string;
  /** An SQL expression for the database's clock minus `seconds`. */
  ago(seconds: number): string;
  /** The query plan of `sql`, as lines of text. */
  explain(sql: string, params: unknown[]): Promise<string[]>;
  close(): Promise<void>;
}

/** A table of this run's own: prune tests delete rows by age, which must not touch anyone else's. */
const tableName = () => `prune_test_${randomUUID().slice(0, 8)}`;

async function sqliteEngine(): Promise<PruneEngine> {
  const { db, dir } = openTempDb();
  const store = sqliteStore(db, { table: tableName() });
  // Raw statements go through the store's queue: on this one connection, one run while a barrier
  // transaction awaits would join it.
  const query = (sql: string, params: unknown[] = []) =>
    store.exclusive((conn) => {
      const statement = conn.prepare(sql);
      return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as Record<string, unknown>[];
    });
  return {
    store,
    query,
    param: () => '?',
    ago: (seconds) => `datetime('now', '-${seconds} seconds')`,
    explain: async (sql, params) => (await query(`EXPLAIN QUERY PLAN ${sql}`, params)).map((row) => String(row.detail)),
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function mysqlEngine(): Promise<PruneEngine> {
  const pool = mysqlPool({ connectionLimit: 10 });
  const table = tableName();
  const query = async (sql: string, params: unknown[] = []) => {
    const [result] = await pool.query(sql, params);
    return Array.isArray(result) ? (result as Record<string, unknown>[]) : [];
  };
  return {
    store: mysqlStore(pool, { table }) as BarrierStore<unknown>,
    query,
    param: () => '?',
    ago: (seconds) => `NOW() - INTERVAL ${seconds} SECOND`,
    explain: async (sql, params) => (await query(`EXPLAIN ${sql}`, params)).map((row) => `${row.table} type=${row.type} key=${row.key}`),
    close: async () => {
      await query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}

async function postgresEngine(): Promise<PruneEngine> {
  const pool = postgresPool({ max: 10 });
  const table = tableName();
  const query = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as Record<string, unknown>[];
  return {
    store: postgresStore(pool, { table }) as BarrierStore<unknown>,
    query,
    param: (index) => `$${index}`,
    ago: (seconds) => `CURRENT_TIMESTAMP - make_interval(secs => ${seconds})`,
    explain: async (sql, params) => (await query(`EXPLAIN ${sql}`, params)).map((row) => String(row['QUERY PLAN'])),
    close: async () => {
      await query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}

function describePrune(name: string, skip: boolean, open: () => Promise<PruneEngine>) {
  describe.skipIf(skip)(`prune: ${name}`, () => {
    let e: PruneEngine;
    let table: string;
    beforeAll(async () => {
      e = await open();
      await e.store.ensureSchema();
      table = e.store.dialect.quoteTable(e.store.table);
    });
    afterAll(async () => {
      await e?.close();
    });

    const gidOf = () => `prune-${randomUUID()}`;
    const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });
    const compensate = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'compensate' });
    const count = async (where = '1 = 1', params: unknown[] = []) =>
      Number((await e.query(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params))[0]!.n);
    const rowsOf = (gids: string[]) => count(`gid IN (${gids.map((_, i) => e.param(i + 1)).join(', ')})`, gids);
    /** Backdates the rows of `gids` by `seconds`, as if they had been written that long ago. */
    const age = (gids: string[], seconds: number) =>
      e.query(`UPDATE ${table} SET create_time = ${e.ago(seconds)} WHERE gid IN (${gids.map((_, i) => e.param(i + 1)).join(', ')})`, gids);
    /** Inserts `total` barrier rows written `seconds` ago, in multi-row statements. */
    async function seed(prefix: string, total: number, seconds: number) {
      for (let done = 0; done < total; done += 500) {
        const gids = Array.from({ length: Math.min(500, total - done) }, (_, i) => `${prefix}-${done + i}`);
        const values = gids.map((_, i) => `('saga', ${e.param(i + 1)}, '01', 'action', '01', 'action', ${e.ago(seconds)}, ${e.ago(seconds)})`);
        await e.query(
          `INSERT INTO ${table} (trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time) VALUES ${values.join(', ')}`,
          gids,
        );
      }
    }

    it('deletes only rows past the retention, in batches no larger than batchSize, and returns the count', async () => {
      const old = [gidOf(), gidOf(), gidOf()];
      const recent = [gidOf(), gidOf()];
      for (const gid of [...old, ...recent]) await action(gid).call(e.store, () => 'done');
      // A null compensation writes two rows; both go when they are old enough.
      await compensate(old[0]!).call(e.store, () => 'done');
      await compensate(recent[0]!).call(e.store, () => 'done');
      await age(old, 10 * DAY);
      await age(recent, 6 * DAY);
      const oldRows = await rowsOf(old);
      const recentRows = await rowsOf(recent);
      const otherOld = await count(`create_time < ${e.ago(7 * DAY)}`);
      expect(oldRows).toBe(4);

      const progress: number[] = [];
      const deleted = await e.store.prune({ olderThan: '7d', batchSize: 3, onProgress: (n) => progress.push(n) });
      expect(deleted).toBe(otherOld);
      expect(await rowsOf(old)).toBe(0);
      expect(await rowsOf(recent)).toBe(recentRows);
      expect(progress.at(-1)).toBe(deleted);
      progress.forEach((total, i) => expect(total - (progress[i - 1] ?? 0)).toBeLessThanOrEqual(3));
      expect(progress.length).toBe(Math.floor(deleted / 3) + 1);
      // Nothing is left to delete.
      expect(await e.store.prune({ olderThan: '7d' })).toBe(0);
    });

    it('refuses a retention under one day unless forced, and a batch size that is not a positive integer', async () => {
      const gid = gidOf();
      await action(gid).call(e.store, () => 'done');
      // Past an hour's retention on every engine, MySQL's 12 h widening for foreign clocks included.
      await age([gid], 14 * 3600);
      for (const olderThan of ['23h', 3_600_000, '90m']) {
        await expect(e.store.prune({ olderThan })).rejects.toBeInstanceOf(BarrierConfigError);
      }
      for (const batchSize of [0, -1, 1.5]) {
        await expect(e.store.prune({ olderThan: '7d', batchSize })).rejects.toBeInstanceOf(BarrierConfigError);
      }
      await expect(e.store.prune({ olderThan: 'soon' })).rejects.toThrow(/duration like 7d/);
      expect(await rowsOf([gid])).toBe(1);
      expect(await e.store.prune({ olderThan: '1h', force: true })).toBeGreaterThanOrEqual(1);
      expect(await rowsOf([gid])).toBe(0);
    });

    it('finds old rows through the create_time index, not a table scan', async () => {
      await seed(`plan-${randomUUID()}`, 2000, 30 * DAY);
      await seed(`plan-${randomUUID()}`, 500, 0);
      if (name === 'postgres') await e.query(`ANALYZE ${table}`);
      if (name === 'mysql') await e.query(`ANALYZE TABLE ${table}`);
      if (name === 'sqlite') await e.query('ANALYZE');
      const statement = e.store.dialect.pruneBatch(e.store.table, e.store.placeholder);
      const plan = (await e.explain(statement, [7 * DAY, 1000])).join('\n');
      const index = name === 'mysql' ? 'key=create_time' : `${e.store.table}_create_time`;
      expect(plan).toContain(index);
      // A full scan: `SCAN t` in SQLite, `Seq Scan` in PostgreSQL, type ALL in MySQL.
      expect(plan).not.toMatch(/\bSCAN\b|Seq Scan|type=ALL/);
      expect(await e.store.prune({ olderThan: '7d' })).toBe(2000);
    });

    it('lets the event loop run between batches, even on a synchronous driver', async () => {
      await seed(`tick-${randomUUID()}`, 3000, 30 * DAY);
      let ticks = 0;
      let ticking = true;
      const tick = () => {
        ticks++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      try {
        expect(await e.store.prune({ olderThan: '7d', batchSize: 100 })).toBe(3000);
      } finally {
        ticking = false;
      }
      // One turn of the loop at least per batch; a sweep holding the loop would leave it at 0 or 1.
      expect(ticks).toBeGreaterThanOrEqual(25);
    });

    it('prunes tens of thousands of rows while traffic flows, failing none of it', async () => {
      const prefix = `bulk-${randomUUID()}`;
      const seeded = 20_000;
      await seed(prefix, seeded, 30 * DAY);
      const before = await count();

      let pruning = true;
      let callsDuringPrune = 0;
      const traffic = Array.from({ length: 4 }, async () => {
        const gids: string[] = [];
        // At least a few calls each, and on until the prune is done.
        while (pruning || gids.length < 5) {
          // Each request arrives from I/O, as over a network: a loop of microtasks alone would starve timers.
          await new Promise((resolve) => setImmediate(resolve));
          const gid = gidOf();
          const result = await action(gid).call(e.store, () => 'paid');
          expect(result.outcome).toBe('applied');
          gids.push(gid);
          if (pruning) callsDuringPrune++;
        }
        return gids;
      });
      const progress: number[] = [];
      const deleted = await e.store
        .prune({ olderThan: '7d', batchSize: 1000, onProgress: (n) => progress.push(n) })
        .finally(() => (pruning = false));
      const written = (await Promise.all(traffic)).flat();

      expect(deleted).toBe(seeded);
      expect(progress.length).toBeGreaterThanOrEqual(seeded / 1000);
      expect(callsDuringPrune).toBeGreaterThan(0);
      expect(await count(`gid LIKE ${e.param(1)}`, [`${prefix}-%`])).toBe(0);
      expect(await rowsOf(written)).toBe(written.length);
      expect(await count()).toBe(before - seeded + written.length);
    });
  });
}

if (testsEngine('sqlite')) describePrune('sqlite', false, sqliteEngine);
if (testsEngine('mysql')) describePrune('mysql', !hasServer('mysql'), mysqlEngine);
if (testsEngine('postgres')) describePrune('postgres', !hasServer('postgres'), postgresEngine);
