/**
 * The SQLite stores' scenarios on Bun: the conformance suite and the synchronous store's queue and
 * busy handling (test/conformance.ts, test/sqlite-queue.ts, which better-sqlite3 and node:sqlite run
 * under vitest on Node), unchanged, on `txbarrier/bun-sqlite` with bun:sqlite. Run by Bun's own test
 * runner, which serves the files' `vitest` imports from `bun:test` (test/runtimes/run.sh bun).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type BunSqliteDatabase, bunSqliteStore } from '../../adapters/stores/bun-sqlite.js';
import { BarrierConfigError } from '../../src/index.js';
import { type BarrierRowRead, describeConformance } from '../barrier/conformance.js';
import { describeSqliteQueue, tempDir } from '../stores/sqlite-queue.js';

interface Database extends BunSqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): { run(...params: unknown[]): { changes: number }; all(...params: unknown[]): unknown[] };
  close(): void;
}

// bun:sqlite exists only on Bun: named through a variable, it has no types here.
const BUN_SQLITE = 'bun:sqlite';
const { Database } = (await import(BUN_SQLITE)) as { Database: new (file: string) => Database };

/** A connection to `file` that waits `timeout` ms for another process's lock: bun:sqlite has no option for it. */
function open(file: string, timeout: number): Database {
  const db = new Database(file);
  db.exec(`PRAGMA busy_timeout = ${timeout}`);
  return db;
}

describe('bunSqliteStore on another object', () => {
  it('throws ERR_TXBARRIER_BUN_SQLITE, naming what is missing, and where the runtime store is', () => {
    const betterSqlite = { name: ':memory:', memory: true, inTransaction: false, prepare() {} };
    expect(() => bunSqliteStore(betterSqlite as never)).toThrow(BarrierConfigError);
    expect(() => bunSqliteStore(betterSqlite as never)).toThrow(/this one has no filename\. Pass a Database from bun:sqlite/);
  });

  it('keeps an in-memory database its own file: two of them never share a queue', async () => {
    const [first, second] = [new Database(':memory:'), new Database(':memory:')];
    const stores = [bunSqliteStore(first, { lockTimeout: 100 }), bunSqliteStore(second, { lockTimeout: 100 })];
    for (const store of stores) await store.ensureSchema();
    let release!: () => void;
    const held = stores[0]!.exclusive(() => new Promise<void>((resolve) => (release = resolve)));
    // The second database's turn comes at once, though the first one's is held.
    expect(await stores[1]!.exclusive(() => 'ran')).toBe('ran');
    release();
    await held;
  });
});

it('runs the bun:sqlite quickstart of docs/stores.md against the built package', async () => {
  const quickstart = /## On Bun: `bun:sqlite`[\s\S]*?```js\n([\s\S]*?)```/.exec(readFileSync('docs/stores.md', 'utf8'))?.[1];
  expect(quickstart).toContain('bunSqliteStore');
  const root = tempDir();
  try {
    // The package as installed: its package.json's exports lead to dist/.
    mkdirSync(join(root, 'node_modules'));
    symlinkSync(process.cwd(), join(root, 'node_modules', 'txbarrier'));
    writeFileSync(join(root, 'app.mjs'), quickstart!);
    const { stdout } = await promisify(execFile)(process.execPath, ['app.mjs'], { cwd: root });
    // What the page's comments say, as Bun prints objects (across lines, double quotes).
    expect(stdout.replace(/\s+/g, '')).toBe('{outcome:"applied",value:70,}{outcome:"duplicate",}');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

describeConformance('bun:sqlite', async () => {
  const dir = tempDir();
  const db = open(join(dir, 'test.db'), 5000);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('CREATE TABLE notes (seq INTEGER PRIMARY KEY AUTOINCREMENT, gid TEXT NOT NULL, note TEXT NOT NULL)');
  const store = bunSqliteStore(db);
  await store.ensureSchema();
  return {
    store,
    makeStore: (options) => bunSqliteStore(db, options),
    record: async (tx, gid, note) => void tx.prepare('INSERT INTO notes (gid, note) VALUES (?, ?)').run(gid, note),
    notes: async (gid) => (db.prepare('SELECT note FROM notes WHERE gid = ? ORDER BY seq').all(gid) as { note: string }[]).map((r) => r.note),
    barrierRows: async (gid) => db.prepare('SELECT * FROM barrier WHERE gid = ?').all(gid) as BarrierRowRead[],
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describeSqliteQueue({
  name: 'bun:sqlite',
  open,
  store: (db, options) => bunSqliteStore(db, options),
  inTransaction: (db) => db.inTransaction,
  openInChild: (file) => `const db = new (require('bun:sqlite').Database)(${JSON.stringify(file)});`,
  busyCause: { code: 'SQLITE_BUSY' },
});
