#!/usr/bin/env node
/**
 * `txbarrier schema <url> [--apply]` and `txbarrier prune <url> --older-than 7d`: the barrier
 * table's DDL and its upkeep, for any engine the URL names. Drivers are the user's own
 * dependencies, loaded only when a command needs a connection.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mysqlStore } from '../adapters/mysql.js';
import { postgresStore } from '../adapters/postgres.js';
import { sqliteStore } from '../adapters/sqlite.js';
import { errorChain } from './dialects/dialect.js';
import { dialects } from './dialects/index.js';
import { BarrierConfigError } from './errors.js';
import type { BarrierStore } from './store.js';

const HELP = `Usage:
  txbarrier schema <url> [--table T] [--apply]
      Print the DDL of the barrier table, or with --apply create whatever is missing.
  txbarrier prune <url> --older-than <duration> [--batch-size N] [--force] [--table T]
      Delete barrier rows older than <duration> (7d, 36h, ...) in batches of N (default 1000).

  <url> picks the engine:
      mysql://user:password@host:3306/database
      postgres://user:password@host:5432/database   (or postgresql://)
      sqlite:path/to/file.db                        (or sqlite:///absolute/path.db)

  --table      table or schema.table (default: dtm_barrier.barrier; barrier on SQLite)
  --force      allow a retention under one day. Rows must outlast the coordinator's longest
               retry window, or a late dangling action finds no barrier and applies.

Exit status: 0 done, 1 the database failed (unreachable, missing table, ...), 2 bad usage.`;

/** A problem with what the user typed: exit status 2. */
class UsageError extends Error {}

/** The database could not be reached or opened: exit status 1. */
class ConnectError extends Error {}

type Target = { engine: 'mysql'; url: string } | { engine: 'postgres'; url: string } | { engine: 'sqlite'; path: string };


const DRIVER = { mysql: 'mysql2', postgres: 'pg', sqlite: 'better-sqlite3' };


function parseTarget(text: string): Target {
  if (text.startsWith('sqlite:')) {
    const path = text.slice('sqlite:'.length).replace(/^\/\//, '');
    if (!path) throw new UsageError('a sqlite URL needs a file path: sqlite:path/to/file.db');
    return { engine: 'sqlite', path: resolve(path) };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`not a database URL: ${JSON.stringify(text)} (try mysql://..., postgres://... or sqlite:path)`);
  }
  if (url.protocol === 'mysql:') return { engine: 'mysql', url: text };
  if (url.protocol === 'postgres:' || url.protocol === 'postgresql:') return { engine: 'postgres', url: text };
  throw new UsageError(`unsupported URL scheme ${url.protocol} (use mysql:, postgres:, postgresql: or sqlite:)`);
}

/** The URL for messages, password hidden. */
function shown(target: Target): string {
  if (target.engine === 'sqlite') return `sqlite:${target.path}`;
  const url = new URL(target.url);
  if (url.password) url.password = '***';
  return url.toString();
}

/** Loads a driver the user installed, or says how to install it. */
async function importDriver<T>(engine: Target['engine'], load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ([...errorChain(error)].some((e) => e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND')) {
      throw new UsageError(`the ${DRIVER[engine]} driver is not installed; install it next to txbarrier: npm install ${DRIVER[engine]}`);
    }
    throw error;
  }
}

/** A store on a connection of its own, and how to close it. */
async function connect(target: Target, table: string, create: boolean): Promise<{ store: BarrierStore<unknown>; close(): Promise<void> }> {
  if (target.engine === 'mysql') {
    const { createPool } = await importDriver('mysql', () => import('mysql2/promise'));
    const pool = createPool({ uri: target.url, connectionLimit: 1 });
    return { store: mysqlStore(pool, { table }) as BarrierStore<unknown>, close: () => pool.end() };
  }
  if (target.engine === 'postgres') {
    const { default: pg } = await importDriver('postgres', () => import('pg'));
    const pool = new pg.Pool({ connectionString: target.url, max: 1 });
    return { store: postgresStore(pool, { table }) as BarrierStore<unknown>, close: () => pool.end() };
  }
  const { default: Database } = await importDriver('sqlite', () => import('better-sqlite3'));
  let db: InstanceType<typeof Database>;
  try {
    // Prune must not create an empty file where a typo put the path; schema --apply may.
    db = new Database(target.path, { fileMustExist: !create });
  } catch (error) {
    throw new ConnectError(error instanceof Error ? error.message : String(error), { cause: error });
  }
  return { store: sqliteStore(db, { table }) as BarrierStore<unknown>, close: async () => void db.close() };
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET',
  'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'ER_DBACCESS_DENIED_ERROR', // MySQL: credentials, database
  '28P01', '28000', '3D000', // PostgreSQL: password, authorization, database
]);
const MISSING_TABLE_CODES = new Set(['ER_NO_SUCH_TABLE', '42P01', '3F000']);

/** Says what went wrong in the user's terms: exit 1 for the database, 2 for the command line. */
function describeFailure(error: unknown, target: Target | undefined, table: string | undefined): { message: string; status: number } {
  if (error instanceof UsageError) return { message: error.message, status: 2 };
  // The store speaks to code (`force: true`); here the switch is --force.
  if (error instanceof BarrierConfigError) return { message: error.message.replace('force: true', '--force'), status: 2 };
  if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
    return { message: `${error.message}\nRun txbarrier --help for usage.`, status: 2 };
  }
  const chain = [...errorChain(error)];
  const codes = chain.map((e) => String(e.code));
  const message = chain.map((e) => e.message).find((m) => typeof m === 'string' && m !== '') ?? String(error);
  const where = target ? shown(target) : 'the database';
  if (error instanceof ConnectError || codes.some((code) => CONNECT_CODES.has(code))) {
    return { message: `cannot connect to ${where}: ${message}`, status: 1 };
  }
  if (codes.some((code) => MISSING_TABLE_CODES.has(code)) || /no such table/.test(String(message))) {
    return { message: `table ${table} does not exist in ${where} (${message}); create it with: txbarrier schema <url> --apply`, status: 1 };
  }
  return { message: `failed on ${where}: ${message}`, status: 1 };
}

async function main(argv: string[]): Promise<number> {
  let target: Target | undefined;
  let table: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        apply: { type: 'boolean' },
        force: { type: 'boolean' },
        table: { type: 'string' },
        'older-than': { type: 'string' },
        'batch-size': { type: 'string' },
      },
    });
    const [command, url, ...extra] = positionals;
    if (values.help || command === 'help' || command === undefined) {
      process.stdout.write(`${HELP}\n`);
      return command === undefined && !values.help ? 2 : 0;
    }
    if (command !== 'schema' && command !== 'prune') throw new UsageError(`unknown command ${JSON.stringify(command)}; run txbarrier --help`);
    if (url === undefined) throw new UsageError(`${command} needs a database URL; run txbarrier --help`);
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    target = parseTarget(url);
    const dialect = dialects[target.engine];
    table = values.table ?? dialect.defaultTable;
    dialect.quoteTable(table);

    if (command === 'schema') {
      if (values['older-than'] !== undefined || values['batch-size'] !== undefined || values.force) {
        throw new UsageError('--older-than, --batch-size and --force belong to prune');
      }
      if (!values.apply) {
        process.stdout.write(dialect.createSchema(table).map((statement) => `${statement};\n`).join('\n'));
        return 0;
      }
      const { store, close } = await connect(target, table, true);
      try {
        await store.ensureSchema();
      } finally {
        await close();
      }
      process.stdout.write(`schema ready: table ${table} in ${shown(target)}\n`);
      return 0;
    }

    if (values.apply) throw new UsageError('--apply belongs to schema');
    const olderThan = values['older-than'];
    if (olderThan === undefined) throw new UsageError('prune needs --older-than, e.g. --older-than 7d');
    const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
    const { store, close } = await connect(target, table, false);
    const progress = process.stderr.isTTY ? (deleted: number) => process.stderr.write(`\rpruned ${deleted} rows...`) : undefined;
    let deleted: number;
    try {
      deleted = await store.prune({ olderThan, batchSize, force: values.force ?? false, onProgress: progress });
    } finally {
      if (progress) process.stderr.write('\r\x1b[K');
      await close();
    }
    process.stdout.write(`pruned ${deleted} rows older than ${olderThan} from ${table} in ${shown(target)}\n`);
    return 0;
  } catch (error) {
    const { message, status } = describeFailure(error, target, table);
    process.stderr.write(`txbarrier: ${message}\n`);
    return status;
  }
}

void main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
