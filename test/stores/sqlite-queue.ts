/**
 * What every synchronous SQLite store guarantees, run unchanged on each driver (better-sqlite3,
 * node:sqlite): the per-file queue and its bounded wait, and busy handling against another process.
 * A driver's test file supplies a `SqliteDriver`, and keeps its driver-only tests.
 */
import { createHook } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, BarrierOngoing, type StoreOptions } from '../../src/index.js';

export interface SqliteConnection {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): unknown; all(...params: unknown[]): unknown[] };
  close(): unknown;
}

export interface SqliteDriver<Db extends SqliteConnection> {
  name: string;
  /** Opens `file` with a busy timeout of `timeout` ms. */
  open(file: string, timeout: number): Db;
  store(db: Db, options?: StoreOptions): SqliteStore<Db>;
  inTransaction(db: Db): boolean;
  /** CommonJS that opens `file` as `db`, for the child process that holds the write lock. */
  openInChild(file: string): string;
  /** What the SQLite error behind a busy file's BarrierOngoing looks like. */
  busyCause: Record<string, unknown>;
}

/** A fresh directory for database files, without symlinks in its path. */
export function tempDir(): string {
  return mkdtempSync(join(realpathSync(tmpdir()), 'txbarrier-sqlite-'));
}

export function describeSqliteQueue<Db extends SqliteConnection>(driver: SqliteDriver<Db>): void {
  describe(`sqlite store on ${driver.name}`, () => {
    const cleanups: (() => void)[] = [];
    afterEach(() => {
      for (const cleanup of cleanups.splice(0)) cleanup();
    });
    /** A database file in WAL mode, as a service would run it, with a ledger table. */
    function temp(timeout = 5000) {
      const dir = tempDir();
      const file = join(dir, 'test.db');
      const db = driver.open(file, timeout);
      cleanups.push(() => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      });
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('CREATE TABLE ledger (gid TEXT NOT NULL, amount INTEGER NOT NULL)');
      return { db, file };
    }
    const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });
    const credit = (tx: Db, gid: string) => void tx.prepare('INSERT INTO ledger VALUES (?, 1)').run(gid);
    const sum = (db: Db) => (db.prepare('SELECT COALESCE(SUM(amount), 0) AS s FROM ledger').all()[0] as { s: number }).s;

    it('never interleaves two async calls on one connection inside one transaction', async () => {
      const { db } = temp();
      const store = driver.store(db);
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

    it('serialises two connections to one file in this process without blocking in BEGIN', async () => {
      const { db, file } = temp();
      const other = driver.open(file, 100);
      cleanups.push(() => other.close());
      const first = driver.store(db);
      const second = driver.store(other);
      await first.ensureSchema();
      const gid = 'same-gid';
      const [a, b] = await Promise.all([
        action(gid).call(first, async (tx) => {
          credit(tx, gid);
          // Longer than the other connection's busy timeout: it must queue, not time out.
          await new Promise((r) => setTimeout(r, 300));
        }),
        action(gid).call(second, (tx) => credit(tx, gid)),
      ]);
      expect([a.outcome, b.outcome].sort()).toEqual(['applied', 'duplicate']);
      expect(sum(db)).toBe(1);
    });

    it('waits for another process holding the write lock, within the busy timeout', async () => {
      const { db, file } = temp(5000);
      const store = driver.store(db);
      await store.ensureSchema();
      const holder = await holdWriteLock(driver.openInChild(file), 400);
      const started = Date.now();
      expect((await action('waited').call(store, (tx) => credit(tx, 'waited'))).outcome).toBe('applied');
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      await holder.done;
    });

    it('reports a busy file past the timeout as BarrierOngoing with the SQLite error as cause, writing nothing', async () => {
      const { db, file } = temp(50);
      const store = driver.store(db);
      await store.ensureSchema();
      const holder = await holdWriteLock(driver.openInChild(file), 1500);
      const error = await action('busy')
        .call(store, () => 'never')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toMatchObject(driver.busyCause);
      await holder.done;
      expect(driver.inTransaction(db)).toBe(false);
      // Nothing was written; once the lock is gone the retry applies.
      expect((await action('busy').call(store, () => 'now')).outcome).toBe('applied');
    });

    it('ends a transaction started from inside another on the same file after the lock timeout, instead of hanging the file', async () => {
      const { db, file } = temp();
      const store = driver.store(db, { lockTimeout: 100 });
      const second = driver.open(file, 5000);
      cleanups.push(() => second.close());
      const sameFile = driver.store(second, { lockTimeout: 100 });
      await store.ensureSchema();
      const nested = action('outer').call(store, async (tx) => {
        credit(tx, 'outer');
        await expect(action('inner').call(store, () => 'never')).rejects.toThrow(BarrierOngoing);
        await expect(action('inner').call(sameFile, () => 'never')).rejects.toThrow(/inside another barrier transaction on this file/);
        await expect(store.exclusive(() => 'never')).rejects.toThrow(BarrierOngoing);
        return 'outer done';
      });
      expect(await nested).toEqual({ outcome: 'applied', value: 'outer done' });
      // The file's queue is not stuck: the next call runs.
      expect((await action('after').call(store, () => 'ran')).outcome).toBe('applied');
      expect(sum(db)).toBe(1);
    });

    it('lets a timer started inside a business function make barrier calls once that transaction ended', async () => {
      const { db } = temp();
      const store = driver.store(db);
      await store.ensureSchema();
      let later: Promise<unknown> | undefined;
      await action('starter').call(store, () => {
        // Work scheduled from inside the transaction, running after it committed.
        later = new Promise((resolve) => setTimeout(resolve, 20)).then(() =>
          action('from-timer').call(store, (tx) => credit(tx, 'from-timer')),
        );
      });
      expect(await later).toMatchObject({ outcome: 'applied' });
      expect(sum(db)).toBe(1);
    });

    it('bounds the wait for the file: a call queued behind a slow one answers BarrierOngoing after lockTimeout, writing nothing', async () => {
      const { db } = temp();
      const store = driver.store(db, { lockTimeout: 50 });
      await store.ensureSchema();
      let release!: () => void;
      const slow = action('slow').call(store, () => new Promise<void>((resolve) => (release = resolve)));
      const started = Date.now();
      const waiting = await action('queued')
        .call(store, () => 'never')
        .catch((error: unknown) => error);
      expect(waiting).toBeInstanceOf(BarrierOngoing);
      expect(waiting).toMatchObject({ code: 'ERR_TXBARRIER_ONGOING' });
      expect(Date.now() - started).toBeLessThan(2000);
      release();
      expect((await slow).outcome).toBe('applied');
      expect(db.prepare("SELECT COUNT(*) AS n FROM barrier WHERE gid = 'queued'").all()[0]).toMatchObject({ n: 0 });
    });

    it('bounds every waiter on a file with one timer, not one each, and still turns each away on time', async () => {
      const { db } = temp();
      const slowStore = driver.store(db, { lockTimeout: 5000 });
      const quickStore = driver.store(db, { lockTimeout: 60 });
      await slowStore.ensureSchema();
      let release!: () => void;
      const slow = action('holder').call(slowStore, () => new Promise<void>((resolve) => (release = resolve)));
      let timers = 0;
      const hook = createHook({ init: (_id, type) => void (type === 'Timeout' && timers++) });
      hook.enable();
      // Ten waiters with a 5 s bound, then three with 60 ms: the earlier bound must still be met.
      const patient = Array.from({ length: 10 }, (_, i) => action(`patient-${i}`).call(slowStore, (tx) => credit(tx, `patient-${i}`)));
      const started = Date.now();
      const hasty = await Promise.all(Array.from({ length: 3 }, (_, i) => action(`hasty-${i}`).call(quickStore, () => 'never').catch((error: unknown) => error)));
      hook.disable();
      for (const error of hasty) expect(error).toBeInstanceOf(BarrierOngoing);
      expect(Date.now() - started).toBeLessThan(2000);
      // One for the 5 s bound, one re-armed for the 60 ms one, one re-armed after it; a loaded machine
      // adds a re-arm or two (seen: 4), and the hook sees the whole process's timers. One per waiter is 13.
      expect(timers).toBeLessThanOrEqual(6);
      release();
      expect((await slow).outcome).toBe('applied');
      for (const result of await Promise.all(patient)) expect(result.outcome).toBe('applied');
      expect(sum(db)).toBe(10);
    });

    it('lets other work on the connection wait for open barrier transactions through exclusive()', async () => {
      const { db } = temp();
      const store = driver.store(db);
      await store.ensureSchema();
      let inside = false;
      const pending = action('x').call(store, async (tx) => {
        inside = true;
        credit(tx, 'x');
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('roll back');
      });
      const seen = await store.exclusive((conn) => {
        // Runs only after the failing transaction rolled back: its row is gone and we are not inside it.
        expect(driver.inTransaction(conn)).toBe(false);
        return sum(conn);
      });
      expect(inside).toBe(true);
      await expect(pending).rejects.toThrow('roll back');
      expect(seen).toBe(0);
    });
  });
}

/** A child process that opens the file, takes its write lock, says so, and releases after `ms`. */
function holdWriteLock(open: string, ms: number): Promise<{ done: Promise<void> }> {
  const script = `
    ${open}
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});
  `;
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const done = new Promise<void>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lock holder exited ${code}`)))),
  );
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({ done }));
    child.once('error', reject);
  });
}
