/**
 * The store on node:sqlite (Node ≥ 22.16 / 24): the conformance suite and the SQLite store's own
 * guarantees (the per-file queue, its bounded wait, busy handling). On a runtime without a usable
 * node:sqlite the suite is skipped and says so; with TXBARRIER_REQUIRE_NODE_SQLITE=1 (as .ci/run
 * sets on Node 22 and 24) it fails instead.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { build } from 'tsup';
import { afterEach, describe, expect, it } from 'vitest';
import { type NodeSqliteDatabase, nodeSqliteStore } from '../adapters/node-sqlite.js';
import { sqliteStore } from '../adapters/sqlite.js';
import { Barrier, BarrierConfigError, BarrierOngoing } from '../src/index.js';
import { type BarrierRowRead, describeConformance } from './conformance.js';

interface DatabaseSync extends NodeSqliteDatabase {
  exec(sql: string): void;
  close(): void;
  readonly isOpen: boolean;
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

/** A fresh database file in WAL mode, as a service would run it, in a directory without symlinks. */
function openTemp(timeout = 5000): { db: DatabaseSync; file: string; dir: string } {
  const dir = mkdtempSync(join(realpathSync(tmpdir()), 'txbarrier-node-sqlite-'));
  const file = join(dir, 'test.db');
  const db = new sqlite!.DatabaseSync(file, { timeout });
  db.exec('PRAGMA journal_mode = WAL');
  return { db, file, dir };
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
    const { db, dir } = openTemp();
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

  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  function temp(timeout?: number) {
    const opened = openTemp(timeout);
    cleanups.push(() => {
      if (opened.db.isOpen) opened.db.close();
      rmSync(opened.dir, { recursive: true, force: true });
    });
    opened.db.exec('CREATE TABLE ledger (gid TEXT NOT NULL, amount INTEGER NOT NULL)');
    return opened;
  }
  const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });
  const sum = (db: NodeSqliteDatabase) => (db.prepare('SELECT COALESCE(SUM(amount), 0) AS s FROM ledger').all()[0] as { s: number }).s;
  const credit = (tx: NodeSqliteDatabase, gid: string) => void tx.prepare('INSERT INTO ledger VALUES (?, 1)').run(gid);

  it('never interleaves two async calls on one connection inside one transaction', async () => {
    const { db } = temp();
    const store = nodeSqliteStore(db);
    await store.ensureSchema();
    let open = 0;
    let maxOpen = 0;
    const work = (gid: string, fail: boolean) =>
      action(gid).call(store, async (tx) => {
        open++;
        maxOpen = Math.max(maxOpen, open);
        credit(tx, gid);
        await new Promise((r) => setTimeout(r, 5));
        open--;
        if (fail) throw new Error(`fail ${gid}`);
      });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => work(`g${i}`, i % 2 === 1)));
    expect(maxOpen).toBe(1);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    // Each failed call rolled back only its own row; the interleaved successes all persisted.
    expect(sum(db)).toBe(10);
  });

  it('queues a node:sqlite and a better-sqlite3 connection to one file together, without blocking in BEGIN', async () => {
    const { db, file } = temp();
    const other = new Database(file, { timeout: 100 });
    cleanups.push(() => other.close());
    const first = nodeSqliteStore(db);
    const second = sqliteStore(other);
    await first.ensureSchema();
    const gid = 'same-gid';
    const [a, b] = await Promise.all([
      action(gid).call(first, async (tx) => {
        credit(tx, gid);
        // Longer than the other connection's busy timeout: it must queue, not time out.
        await new Promise((r) => setTimeout(r, 300));
      }),
      action(gid).call(second, (tx) => void tx.prepare('INSERT INTO ledger VALUES (?, 1)').run(gid)),
    ]);
    expect([a.outcome, b.outcome].sort()).toEqual(['applied', 'duplicate']);
    expect(sum(db)).toBe(1);
  });

  it('waits for another process holding the write lock, within the busy timeout', async () => {
    const { db, file } = temp(5000);
    const store = nodeSqliteStore(db);
    await store.ensureSchema();
    const holder = await holdWriteLock(file, 400);
    const started = Date.now();
    expect((await action('waited').call(store, (tx) => credit(tx, 'waited'))).outcome).toBe('applied');
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    await holder.done;
  });

  it('reports a busy file past the timeout as BarrierOngoing with the SQLite error as cause, writing nothing', async () => {
    const { db, file } = temp(50);
    const store = nodeSqliteStore(db);
    await store.ensureSchema();
    const holder = await holdWriteLock(file, 1500);
    const error = await action('busy')
      .call(store, () => 'never')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BarrierOngoing);
    expect((error as BarrierOngoing).cause).toMatchObject({ code: 'ERR_SQLITE_ERROR', errcode: 5 });
    await holder.done;
    expect(db.isTransaction).toBe(false);
    expect((await action('busy').call(store, () => 'now')).outcome).toBe('applied');
  });

  it('bounds the wait for the file: a call queued behind a slow one answers BarrierOngoing after lockTimeout, writing nothing', async () => {
    const { db } = temp();
    const store = nodeSqliteStore(db, { lockTimeout: 50 });
    await store.ensureSchema();
    let release!: () => void;
    const slow = action('slow').call(store, () => new Promise<void>((resolve) => (release = resolve)));
    const started = Date.now();
    const waiting = await action('queued')
      .call(store, () => 'never')
      .catch((error: unknown) => error);
    expect(waiting).toMatchObject({ code: 'ERR_TXBARRIER_ONGOING' });
    expect(Date.now() - started).toBeLessThan(2000);
    release();
    expect((await slow).outcome).toBe('applied');
    expect(db.prepare("SELECT COUNT(*) AS n FROM barrier WHERE gid = 'queued'").all()[0]).toMatchObject({ n: 0 });
  });

  it('ends a transaction started from inside another on the same file after the lock timeout, instead of hanging the file', async () => {
    const { db } = temp();
    const store = nodeSqliteStore(db, { lockTimeout: 100 });
    await store.ensureSchema();
    const nested = action('outer').call(store, async (tx) => {
      credit(tx, 'outer');
      await expect(action('inner').call(store, () => 'never')).rejects.toThrow(/inside another barrier transaction on this file/);
      return 'outer done';
    });
    expect(await nested).toEqual({ outcome: 'applied', value: 'outer done' });
    expect((await action('after').call(store, () => 'ran')).outcome).toBe('applied');
    expect(sum(db)).toBe(1);
  });

  it("runs the README's node:sqlite quickstart against the built package, with no node_modules at all", async () => {
    const quickstart = /### Without a native module[\s\S]*?```js\n([\s\S]*?)```/.exec(readFileSync('README.md', 'utf8'))?.[1];
    expect(quickstart).toContain('nodeSqliteStore');
    const root = mkdtempSync(join(realpathSync(tmpdir()), 'txbarrier-quickstart-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    await build({
      config: false,
      entry: { index: 'src/index.ts', 'node-sqlite': 'adapters/node-sqlite.ts' },
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

  it('lets other work on the connection wait for open barrier transactions through exclusive()', async () => {
    const { db } = temp();
    const store = nodeSqliteStore(db);
    await store.ensureSchema();
    const pending = action('x').call(store, async (tx) => {
      credit(tx, 'x');
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('roll back');
    });
    const seen = await store.exclusive((conn) => {
      expect(conn.isTransaction).toBe(false);
      return sum(conn);
    });
    await expect(pending).rejects.toThrow('roll back');
    expect(seen).toBe(0);
  });
});

/** A child process on node:sqlite that takes the file's write lock, says so, and releases after `ms`. */
function holdWriteLock(file: string, ms: number): Promise<{ done: Promise<void> }> {
  const script = `
    const { DatabaseSync } = require('node:sqlite');
    const db = new DatabaseSync(${JSON.stringify(file)});
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});
  `;
  const child = spawn(process.execPath, ['--no-warnings=ExperimentalWarning', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const done = new Promise<void>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lock holder exited ${code}`)))),
  );
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({ done }));
    child.once('error', reject);
  });
}
