/**
 * `storeFromUrl`: a barrier store on the engine a URL names, with a connection pool of its own. For
 * tools, scripts and tests (the CLI, the examples, the benchmarks); a service normally builds its
 * store on the pool it already has. Drivers are the user's own dependencies, loaded only here.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { errorChain } from '../src/dialects/dialect.js';
import { BarrierConfigError, type BarrierStore, type DialectName, type StoreOptions } from '../src/index.js';
import { mysqlStore } from './stores/mysql.js';
import { postgresStore } from './stores/postgres.js';
import { type NodeSqliteDatabase, nodeSqliteStore } from './stores/node-sqlite.js';
import { sqliteStore } from './stores/sqlite.js';

/**
 * Which engine a URL names and where: the password (in the user part or a `password` parameter)
 * is kept only in `url`, never in `shown`.
 */
export type DatabaseTarget =
  | { engine: 'mysql' | 'postgres'; url: string; shown: string }
  | { engine: 'sqlite'; path: string; shown: string };

export interface StoreFromUrlOptions extends StoreOptions {
  /** Connections in the pool (MySQL, PostgreSQL). Defaults to 4. */
  poolSize?: number;
  /** Whether a missing SQLite file may be created (never a server's database). Defaults to true. */
  create?: boolean;
}

export interface OpenedStore {
  readonly target: DatabaseTarget;
  readonly store: BarrierStore<unknown>;
  /** Ends the pool (or closes the SQLite file). */
  close(): Promise<void>;
}

const DRIVER: Record<DialectName, string> = { mysql: 'mysql2', postgres: 'pg', sqlite: 'better-sqlite3' };

/**
 * Reads `mysql://user:password@host:3306/database`, `postgres://…` (or `postgresql://`), and
 * `sqlite:path/to/file.db` (or `sqlite:///absolute/path.db`). Throws `BarrierConfigError`
 * (`ERR_TXBARRIER_URL`) for anything else.
 */
export function parseDatabaseUrl(text: string): DatabaseTarget {
  if (typeof text === 'string' && text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length).replace(/^\/\//, '');
    if (!path) throw urlError('a sqlite URL needs a file path: sqlite:path/to/file.db');
    const absolute = resolve(path);
    return { engine: 'sqlite', path: absolute, shown: `sqlite:${absolute}` };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw urlError(`not a database URL: ${JSON.stringify(redacted(String(text)))} (try mysql://..., postgres://... or sqlite:path)`);
  }
  const engine = url.protocol === 'mysql:' ? 'mysql' : url.protocol === 'postgres:' || url.protocol === 'postgresql:' ? 'postgres' : undefined;
  if (!engine) throw urlError(`unsupported URL scheme ${url.protocol} (use mysql:, postgres:, postgresql: or sqlite:)`);
  return { engine, url: text, shown: redacted(text) };
}

/** A query parameter that carries a password (`password`, `sslpassword`, any case). */
const SECRET_PARAM = /pass/i;

/** The URL with its password and password parameters shown as `***`; for text that is no URL, the same by pattern. */
function redacted(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    for (const name of new Set(url.searchParams.keys())) if (SECRET_PARAM.test(name)) url.searchParams.set(name, '***');
    // URLSearchParams encodes `*`; the mask reads better as it is.
    return url.toString().replaceAll('%2A%2A%2A', '***');
  } catch {
    return text.replace(/(\/\/[^/:@]*:)[^@/]*@/, '$1***@').replace(/([?&][^=&]*pass[^=&]*=)[^&]*/gi, '$1***');
  }
}

/**
 * The secrets a database URL carries (its password and password parameters, as written and
 * decoded), for a tool that must scrub them from a driver's error messages: `shown` is never the
 * only place a message could echo them.
 */
export function secretsOf(text: string): string[] {
  const found = new Set<string>();
  const add = (value: string | undefined) => {
    if (!value) return;
    found.add(value);
    try {
      found.add(decodeURIComponent(value));
    } catch {
      // Not valid percent-encoding: the text as written is what a message would echo.
    }
  };
  add(/\/\/[^/:@]*:([^@/]*)@/.exec(text)?.[1]);
  for (const match of text.matchAll(/[?&][^=&]*pass[^=&]*=([^&#]*)/gi)) add(match[1]);
  return [...found];
}

/** A store on the database `url` names, on a pool of its own; `close()` when done. */
export async function storeFromUrl(url: string | DatabaseTarget, options: StoreFromUrlOptions = {}): Promise<OpenedStore> {
  const target = typeof url === 'string' ? parseDatabaseUrl(url) : url;
  const { poolSize = 4, create = true, ...storeOptions } = options;
  if (target.engine === 'sqlite') return openSqlite(target, create, storeOptions);
  if (target.engine === 'mysql') {
    const { createPool } = await importDriver('mysql', () => import('mysql2/promise'));
    const pool = createPool({ uri: target.url, connectionLimit: poolSize });
    return { target, store: mysqlStore(pool, storeOptions) as BarrierStore<unknown>, close: () => pool.end() };
  }
  const { default: pg } = await importDriver('postgres', () => import('pg'));
  const pool = new pg.Pool({ connectionString: target.url, max: poolSize });
  return { target, store: postgresStore(pool, storeOptions) as BarrierStore<unknown>, close: () => pool.end() };
}

/**
 * A SQLite file through better-sqlite3 when it is installed and the runtime loads it, else through
 * the runtime's own `node:sqlite` (Node ≥ 22.16, Bun, Deno), so a tool needs no native module where
 * the runtime has one. Bun and Deno never load better-sqlite3's addon (it is built on V8's own API).
 */
async function openSqlite(target: DatabaseTarget & { engine: 'sqlite' }, create: boolean, options: StoreOptions): Promise<OpenedStore> {
  const addonLoads = process.versions.bun === undefined && process.versions.deno === undefined;
  if (!addonLoads && !builtInSqlite()) {
    throw new BarrierConfigError('this runtime cannot load better-sqlite3 and has no node:sqlite with isTransaction and location(): use Bun 1.4 or Deno 2.9 or later', {
      code: 'ERR_TXBARRIER_DRIVER_MISSING',
    });
  }
  const betterSqlite = !addonLoads
    ? undefined
    : await import('better-sqlite3').catch((error: unknown) => {
        if (!missingModule(error)) throw error;
        if (!builtInSqlite()) throw driverMissing('sqlite', error);
        return undefined;
      });
  if (betterSqlite) {
    const db = new betterSqlite.default(target.path, { fileMustExist: !create });
    return { target, store: sqliteStore(db, options) as BarrierStore<unknown>, close: async () => void db.close() };
  }
  if (!create && !existsSync(target.path)) {
    throw Object.assign(new Error(`unable to open database file: ${target.path} does not exist`), { code: 'SQLITE_CANTOPEN' });
  }
  const { DatabaseSync } = builtInSqlite()!;
  const db = new DatabaseSync(target.path, { timeout: 5000 });
  return { target, store: nodeSqliteStore(db, options) as BarrierStore<unknown>, close: async () => db.close() };
}

/** `node:sqlite` where the runtime has the parts the store needs, else undefined (never imported statically). */
function builtInSqlite(): { DatabaseSync: new (path: string, options: { timeout: number }) => NodeSqliteDatabase & { close(): void } } | undefined {
  const module = (process as { getBuiltinModule?: (name: string) => unknown }).getBuiltinModule?.('node:sqlite') as
    | { DatabaseSync?: { prototype: object } }
    | undefined;
  return module?.DatabaseSync && 'location' in module.DatabaseSync.prototype ? (module as never) : undefined;
}

function missingModule(error: unknown): boolean {
  return [...errorChain(error)].some((e) => e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND');
}

/** Loads a driver the user installed, or says how to install it. */
async function importDriver<T>(engine: DialectName, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    throw missingModule(error) ? driverMissing(engine, error) : error;
  }
}

function driverMissing(engine: DialectName, cause: unknown): BarrierConfigError {
  const install = engine === 'sqlite' ? 'npm install better-sqlite3@12 (or run on Node ≥ 22.16, whose node:sqlite needs nothing)' : `npm install ${DRIVER[engine]}`;
  return new BarrierConfigError(`the ${DRIVER[engine]} driver is not installed; install it next to txbarrier: ${install}`, {
    code: 'ERR_TXBARRIER_DRIVER_MISSING',
    cause,
  });
}

function urlError(message: string): BarrierConfigError {
  return new BarrierConfigError(message, { code: 'ERR_TXBARRIER_URL' });
}
