/**
 * What the stores on synchronous SQLite drivers (better-sqlite3, node:sqlite, bun:sqlite) share:
 * the per-file queue, the transaction steps and the check of the connection a store is given.
 * A driver's store only says how to read its connection's file name and transaction state.
 */
import { resolve } from 'node:path';
import { BarrierConfigError, BarrierOngoing, type BarrierStore, defineStore, sqliteDialect, type StatementRunner, type StoreOptions } from '../../src/index.js';

/** A prepared statement as all three drivers offer it. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number | bigint };
  all(...params: unknown[]): unknown[];
}

/** A synchronous SQLite connection as all three drivers offer it. */
export interface SynchronousDatabase {
  prepare(sql: string): SqliteStatement;
}

export interface SqliteStore<Db> extends BarrierStore<Db> {
  /**
   * Runs `fn` when no barrier transaction is open on this database file in this process. Use it
   * for any other work on the same connection: a statement run while a barrier transaction awaits
   * would silently join that transaction.
   */
  exclusive<T>(fn: (db: Db) => Promise<T> | T): Promise<T>;
}

/** What a store needs of the object it is given: each member's `typeof`. */
export type ConnectionShape = Record<string, 'function' | 'string' | 'boolean'>;

/**
 * Throws `BarrierConfigError` with `code` when `db` lacks a member of `shape`, naming each one
 * (`prepare()`, `inTransaction`) after `needs` and before `advice()`, which says what to use instead.
 */
export function requireShape(db: unknown, shape: ConnectionShape, what: { needs: string; code: string; advice: () => string }): void {
  const lacking = Object.entries(shape)
    .filter(([name, type]) => typeof (db as Record<string, unknown> | null | undefined)?.[name] !== type)
    .map(([name, type]) => (type === 'function' ? `${name}()` : name));
  if (lacking.length > 0) throw new BarrierConfigError(`${what.needs}; this one has no ${lacking.join(', ')}. ${what.advice()}`, { code: what.code });
}

/**
 * The store over a synchronous SQLite connection. `path` (null for an in-memory database, which
 * is then its own file) names the database file for the queue: two connections to one file in
 * this process then never make each other wait inside BEGIN (which would block the event loop for
 * the whole busy timeout).
 */
export function synchronousStore<Db extends SynchronousDatabase>(
  db: Db,
  path: string | null,
  inTransaction: () => boolean,
  options: StoreOptions,
): SqliteStore<Db> {
  const file = path === null ? db : resolve(path);
  const statements = new Map<string, { statement: SqliteStatement; returnsRows: boolean }>();
  const prepared = (sql: string) => {
    let entry = statements.get(sql);
    // A query, or a statement with RETURNING, produces rows, which only `all` reads.
    if (!entry) statements.set(sql, (entry = { statement: db.prepare(sql), returnsRows: /^\s*SELECT\b|\bRETURNING\b/i.test(sql) }));
    return entry;
  };
  const runner: StatementRunner<Db, { changes?: number | bigint; rows?: unknown[] }> = {
    tx: db,
    query: async (sql, params) => {
      const { statement, returnsRows } = prepared(sql);
      return returnsRows ? { rows: statement.all(...params) } : statement.run(...params);
    },
    affectedRows: (result) => result.changes,
    rows: (result) => result.rows,
  };
  const run = (sql: string) => prepared(sql).statement.run();
  const waitMs = options.lockTimeout ?? 2000;
  const exclusive = async <T>(fn: () => Promise<T> | T): Promise<T> => {
    const handOn = await turnOn(file, waitMs);
    try {
      return await fn();
    } finally {
      handOn();
    }
  };

  const store = defineStore(
    sqliteDialect,
    options,
    () => ({
      // The connection is the queue's turn: one transaction at a time on this file in this process.
      acquire: () => turnOn(file, waitMs),
      // Synchronous steps handing back settled promises: runTransaction awaits each inside its try, so a
      // throw here is met exactly as a rejection would be, without an async frame per step.
      begin: () => {
        run('BEGIN IMMEDIATE');
        return DONE;
      },
      commit: () => {
        run('COMMIT');
        return COMMITTED;
      },
      // SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR).
      rollback: async () => void (inTransaction() && run('ROLLBACK')),
      release: (done) => done(),
      destroy: (done) => {
        // The one connection cannot be closed: end whatever transaction is left, then hand on the turn.
        try {
          if (inTransaction()) run('ROLLBACK');
        } finally {
          done();
        }
      },
      runner: () => runner,
    }),
    { timeouts: false },
  );
  return { ...store, exclusive: (fn) => exclusive(() => fn(db)) };
}

const DONE = Promise.resolve();
const COMMITTED = Promise.resolve(true);

/** A call waiting for its turn on a file: a record, not a closure and a timer of its own. */
interface Waiter {
  /** When it gives up (performance.now()). */
  readonly at: number;
  readonly waitMs: number;
  readonly turn: () => void;
  readonly resolve: (turn: () => void) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * One file's line: whether a transaction holds it, who waits (oldest first), and one timer for all
 * the waiters, armed for the earliest bound (stores on one file may have different lock timeouts).
 */
interface Line {
  busy: boolean;
  readonly waiting: Waiter[];
  timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires. */
  timerAt: number;
}

/**
 * One set of lines per process, even when the ESM and the CommonJS builds are both loaded: two sets
 * would let two transactions interleave on one connection. A file path's line is kept (a few bytes
 * per file ever used); an in-memory database's line is its connection's, and goes with it.
 */
interface Lines {
  readonly byPath: Map<string, Line>;
  readonly byConnection: WeakMap<object, Line>;
}
const LINES = Symbol.for('txbarrier.sqlite.lines.v3');
const lines: Lines = ((globalThis as { [LINES]?: Lines })[LINES] ??= { byPath: new Map(), byConnection: new WeakMap() });

function lineOf(file: object | string): Line {
  const byKind: Map<string, Line> | WeakMap<object, Line> = typeof file === 'string' ? lines.byPath : lines.byConnection;
  let line = (byKind as Map<object | string, Line>).get(file);
  if (!line) (byKind as Map<object | string, Line>).set(file, (line = { busy: false, waiting: [], timer: undefined, timerAt: Infinity }));
  return line;
}

/**
 * Resolves to the file's turn once its earlier work has finished: a function that hands the turn
 * on (calling it again does nothing). Rejects with `BarrierOngoing` after `waitMs`. The bound also
 * ends what would otherwise hang for ever: a transaction started from inside another one on the
 * same file, which waits for itself.
 */
function turnOn(file: object | string, waitMs: number): Promise<() => void> {
  const line = lineOf(file);
  let handedOn = false;
  const turn = () => {
    if (handedOn) return;
    handedOn = true;
    const next = line.waiting.shift();
    if (next) {
      // Nobody left to bound: a pending timer would keep the process alive for nothing.
      if (line.waiting.length === 0) disarm(line);
      next.resolve(next.turn);
    } else line.busy = false;
  };
  if (!line.busy) {
    line.busy = true;
    return Promise.resolve(turn);
  }
  return new Promise((resolve, reject) => {
    const at = performance.now() + waitMs;
    line.waiting.push({ at, waitMs, turn, resolve, reject });
    if (at < line.timerAt) arm(line, at);
  });
}

function arm(line: Line, at: number): void {
  disarm(line);
  line.timerAt = at;
  // A timer may fire up to a millisecond early by performance.now(): the sweep re-arms for the rest.
  line.timer = setTimeout(sweep, Math.max(1, Math.ceil(at - performance.now())), line);
}

function disarm(line: Line): void {
  if (line.timer !== undefined) clearTimeout(line.timer);
  line.timer = undefined;
  line.timerAt = Infinity;
}

/** Turns away the waiters whose bound has passed, and re-arms for the earliest of the rest. */
function sweep(line: Line): void {
  line.timer = undefined;
  line.timerAt = Infinity;
  const now = performance.now();
  let earliest = Infinity;
  for (let index = 0; index < line.waiting.length; ) {
    const waiter = line.waiting[index]!;
    if (waiter.at > now) {
      earliest = Math.min(earliest, waiter.at);
      index++;
      continue;
    }
    line.waiting.splice(index, 1);
    waiter.reject(
      new BarrierOngoing(
        `waited ${waiter.waitMs} ms for the transaction ahead of this one on the same SQLite file (a slow business ` +
          'function, or a barrier call made from inside another barrier transaction on this file, which can never run)',
      ),
    );
  }
  if (earliest < Infinity) arm(line, earliest);
}
