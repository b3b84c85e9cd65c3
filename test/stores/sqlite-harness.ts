import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import type { BarrierRowRead, Harness } from '../barrier/conformance.js';

export type Db = InstanceType<typeof Database>;

/** A fresh database file in WAL mode, as a service would run it. */
export function openTempDb(): { db: Db; file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-'));
  const file = join(dir, 'test.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  return { db, file, dir };
}

export async function sqliteHarness(): Promise<Harness<Db>> {
  const { db, dir } = openTempDb();
  db.exec('CREATE TABLE notes (seq INTEGER PRIMARY KEY AUTOINCREMENT, gid TEXT NOT NULL, note TEXT NOT NULL)');
  const store = sqliteStore(db);
  await store.ensureSchema();
  return {
    store,
    makeStore: (options) => sqliteStore(db, options),
    record: async (tx, gid, note) => {
      tx.prepare('INSERT INTO notes (gid, note) VALUES (?, ?)').run(gid, note);
    },
    notes: async (gid) =>
      (db.prepare('SELECT note FROM notes WHERE gid = ? ORDER BY seq').all(gid) as { note: string }[]).map((r) => r.note),
    barrierRows: async (gid) => db.prepare('SELECT * FROM barrier WHERE gid = ?').all(gid) as BarrierRowRead[],
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
