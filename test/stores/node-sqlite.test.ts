/**
 * The store on node:sqlite (Node ≥ 22.16 / 24): the conformance suite, the SQLite store's queue and
 * busy handling (the suite better-sqlite3 runs too), and the no-native-module quickstart of docs/stores.md. On a runtime without a usable
 * node:sqlite the suite is skipped and says so; with TXBARRIER_REQUIRE_NODE_SQLITE=1 (as .ci/run
 * sets on Node 22 and 24) it fails instead.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { build } from 'tsup';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type NodeSqliteDatabase, nodeSqliteStore } from '../../adapters/stores/node-sqlite.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, BarrierConfigError } from '../../src/index.js';
import { type BarrierRowRead, describeConformance } from '../barrier/conformance.js';
import { describeSqliteQueue, tempDir } from './sqlite-queue.js';

interface DatabaseSync extends NodeSqliteDatabase {
  exec(sql: string): void;
  close(): void;
}
interface NodeSqlite {
  DatabaseSync: { new (file: string, options?: { timeout?: number }): DatabaseSync; prototype: object };
}

const sqlite = process.getBuiltinModule?.('node:sqlite') as NodeSqlite | undefined;
const usable = sqlite !== undefined && 'location' in sqlite.DatabaseSync.prototype;
if (!usable) {
  const problem = `Node ${process.version} has no node:sqlite with isTransaction and location() (Node 22.16 or later, or 24)`;
  if (process.env.TXBARRIER_REQUIRE_NODE_SQLITE === '1') throw new Error(`TXBARRIER_REQUIRE_NODE_SQLITE=1 but ${problem}`);
  console.warn(`\ntxbarrier: SKIPPING the node:sqlite store tests: ${problem}\n`);
}

describe('nodeSqliteStore on another object', () => {
  it('throws ERR_TXBARRIER_NODE_SQLITE, naming what this runtime lacks', () => {
    const notNodeSqlite = { name: ':memory:', memory: true, inTransaction: false, prepare() {} };
    const error = (() => {
      try {
        nodeSqliteStore(notNodeSqlite as never);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(BarrierConfigError);
    expect(error).toMatchObject({ code: 'ERR_TXBARRIER_NODE_SQLITE' });
    const message = (error as Error).message;
    expect(message).toContain('location(), isTransaction');
    if (sqlite === undefined) expect(message).toContain(`Node ${process.version} has no node:sqlite`);
    else if (!usable) expect(message).toContain('they came in 22.16 and 24.0');
    else expect(message).toContain('for better-sqlite3 use sqliteStore');
  });
});

describe.skipIf(!usable)('node:sqlite store', () => {
  describeConformance('node:sqlite', async () => {
    const dir = tempDir();
    const db = new sqlite!.DatabaseSync(join(dir, 'test.db'));
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('CREATE TABLE notes (seq INTEGER PRIMARY KEY AUTOINCREMENT, gid TEXT NOT NULL, note TEXT NOT NULL)');
    const store = nodeSqliteStore(db);
    await store.ensureSchema();
    return {
      store,
      makeStore: (options) => nodeSqliteStore(db, options),
      record: async (tx, gid, note) => void tx.prepare('INSERT INTO notes (gid, note) VALUES (?, ?)').run(gid, note),
      notes: async (gid) => (db.prepare('SELECT note FROM notes WHERE gid = ? ORDER BY seq').all(gid) as { note: string }[]).map((r) => r.note),
      // node:sqlite rows have a null prototype; the suite compares plain objects.
      barrierRows: async (gid) => db.prepare('SELECT * FROM barrier WHERE gid = ?').all(gid).map((row) => ({ ...(row as BarrierRowRead) })),
      close: async () => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });

  describeSqliteQueue({
    name: 'node:sqlite',
    open: (file, timeout) => new sqlite!.DatabaseSync(file, { timeout }),
    store: (db, options) => nodeSqliteStore(db, options),
    inTransaction: (db) => db.isTransaction,
    openInChild: (file) => `const db = new (require('node:sqlite').DatabaseSync)(${JSON.stringify(file)});`,
    busyCause: { code: 'ERR_SQLITE_ERROR', errcode: 5 },
  });

  it('queues a node:sqlite and a better-sqlite3 connection to one file together, without blocking in BEGIN', async () => {
    const dir = tempDir();
    const file = join(dir, 'test.db');
    const db = new sqlite!.DatabaseSync(file);
    const other = new Database(file, { timeout: 100 });
    onTestFinished(() => {
      db.close();
      other.close();
      rmSync(dir, { recursive: true, force: true });
    });
    db.exec('PRAGMA journal_mode = WAL');
    const first = nodeSqliteStore(db);
    const second = sqliteStore(other);
    await first.ensureSchema();
    const action = () => Barrier.from({ transType: 'saga', gid: 'same-gid', branchId: '01', op: 'action' });
    const [a, b] = await Promise.all([
      // Longer than the other connection's busy timeout: it must queue, not time out.
      action().call(first, () => new Promise((r) => setTimeout(r, 300))),
      action().call(second, () => 'second'),
    ]);
    expect([a.outcome, b.outcome].sort()).toEqual(['applied', 'duplicate']);
  });

  it("runs the node:sqlite quickstart of docs/stores.md against the built package, with no node_modules at all", async () => {
    const quickstart = /## Without a native module[\s\S]*?```js\n([\s\S]*?)```/.exec(readFileSync('docs/stores.md', 'utf8'))?.[1];
    expect(quickstart).toContain('nodeSqliteStore');
    const root = tempDir();
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    await build({
      config: false,
      entry: { index: 'src/index.ts', 'node-sqlite': 'adapters/stores/node-sqlite.ts' },
      format: ['esm'],
      splitting: true,
      target: 'node20',
      outDir: join(root, 'dist'),
      silent: true,
    });
    copyFileSync('package.json', join(root, 'package.json'));
    writeFileSync(join(root, 'app.mjs'), quickstart!);
    // Nothing to resolve a driver from: the package and node:sqlite are all there is.
    expect(() => createRequire(join(root, 'app.mjs')).resolve('better-sqlite3')).toThrow(/Cannot find module/);
    const { stdout } = await promisify(execFile)(process.execPath, ['app.mjs'], { cwd: root });
    expect(stdout).toMatch(/\{ outcome: 'applied', value: 70 \}\n\{ outcome: 'duplicate' \}/);
  });
});
