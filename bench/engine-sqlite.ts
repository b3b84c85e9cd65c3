import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import type { BarrierStore } from '../src/index.js';
import { ACCOUNTS, type BenchEngine, type Layout, keyStep, type Transfer } from './engine.js';

type Db = InstanceType<typeof Database>;

const COLUMNS = '(trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time)';

/** DTM has no SQLite DDL; this is its MySQL one translated (a rowid alias as the surrogate id). */
function dtmTable(table: string, indexed: boolean): string {
  return `CREATE TABLE "${table}" (
  id INTEGER PRIMARY KEY,
  trans_type TEXT DEFAULT '', gid TEXT DEFAULT '', branch_id TEXT DEFAULT '', op TEXT DEFAULT '',
  barrier_id TEXT DEFAULT '', reason TEXT DEFAULT '',
  create_time TEXT DEFAULT CURRENT_TIMESTAMP, update_time TEXT DEFAULT CURRENT_TIMESTAMP,
  UNIQUE (gid, branch_id, op, barrier_id));
${indexed ? `CREATE INDEX "${table}_create_time" ON "${table}" (create_time); CREATE INDEX "${table}_update_time" ON "${table}" (update_time);` : ''}`;
}

/**
 * better-sqlite3 on one connection, WAL with synchronous=FULL (every commit is fsynced). The
 * hand-written barrier is synchronous, as the fastest code on this driver is.
 */
export async function sqliteEngine(prefix: string, file?: string): Promise<BenchEngine<Db>> {
  const tempDir = file ? undefined : mkdtempSync(join(tmpdir(), 'txbarrier-bench-'));
  const path = file ?? join(tempDir!, 'bench.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const accounts = `${prefix}accounts`;
  db.exec(`DROP TABLE IF EXISTS "${accounts}"; CREATE TABLE "${accounts}" (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)`);
  db.prepare(
    `INSERT INTO "${accounts}" WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?) SELECT i, 0 FROM s`,
  ).run(ACCOUNTS);

  const update = db.prepare(`UPDATE "${accounts}" SET balance = balance + ? WHERE id = ?`);
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  const stores = new Map<string, BarrierStore<Db>>();
  const store = (table: string) => {
    let made = stores.get(table);
    if (!made) stores.set(table, (made = sqliteStore(db, { table })));
    return made;
  };

  const transaction = <T>(work: () => T): T => {
    begin.run();
    try {
      const result = work();
      commit.run();
      return result;
    } catch (error) {
      if (db.inTransaction) rollback.run();
      throw error;
    }
  };
  const applyTransfers = (transfers: readonly Transfer[]) => {
    for (const { account, amount } of transfers) update.run(amount, account);
  };

  return {
    name: 'sqlite',
    prefix,
    file: path,
    version: `SQLite ${(db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v} (better-sqlite3, WAL, synchronous=FULL)`,
    layouts: ['default', 'dtm', 'dtm-indexed', 'key-only'],

    async createBarrierTable(table, layout: Layout) {
      db.exec(`DROP TABLE IF EXISTS "${table}"`);
      if (layout === 'default' || layout === 'key-only') await store(table).ensureSchema();
      else db.exec(dtmTable(table, layout === 'dtm-indexed'));
      if (layout === 'key-only') db.exec(`DROP INDEX "${table}_create_time"`);
    },
    async dropTable(table) {
      db.exec(`DROP TABLE IF EXISTS "${table}"`);
    },
    async rowCount(table) {
      return (db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
    },
    async bulkLoad(table, from, to, total) {
      transaction(() =>
        db
          .prepare(
            `INSERT INTO "${table}" ${COLUMNS}
             WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i < ?)
             SELECT 'saga', printf('%08x-%d', i * ?, i), '01', 'action', '01', 'action',
                    datetime('now', '-30 days'), datetime('now', '-30 days') FROM s`,
          )
          .run(from, to - 1, keyStep(total)),
      );
    },
    async settle(table) {
      db.exec(`ANALYZE "${table}"`);
      db.pragma('wal_checkpoint(TRUNCATE)');
    },
    store,
    // The store hands over this same connection, so the prepared statement is the hand-written code's.
    async business(_tx, transfers) {
      applyTransfers(transfers);
    },
    async bare(transfers) {
      transaction(() => applyTransfers(transfers));
    },
    async close() {
      db.exec(`DROP TABLE IF EXISTS "${accounts}"`);
      db.close();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };
}
