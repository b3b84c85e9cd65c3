#!/usr/bin/env node
/**
 * `txbarrier schema <url> [--apply]` and `txbarrier prune <url> --older-than 7d`: the barrier
 * table's DDL and its upkeep, for any engine the URL names. Drivers are the user's own
 * dependencies, loaded only when a command needs a connection.
 */
import { parseArgs } from 'node:util';
import { type DatabaseTarget, parseDatabaseUrl, storeFromUrl } from '../adapters/url.js';
import { errorChain } from '../src/dialects/dialect.js';
import { BarrierConfigError, dialects } from '../src/index.js';

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

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET',
  'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR', 'ER_DBACCESS_DENIED_ERROR', // MySQL: credentials, database
  'SQLITE_CANTOPEN', // SQLite: a file that is not there (prune never creates one)
  '28P01', '28000', '3D000', // PostgreSQL: password, authorization, database
]);
const MISSING_TABLE_CODES = new Set(['ER_NO_SUCH_TABLE', '42P01', '3F000']);

/** Says what went wrong in the user's terms: exit 1 for the database, 2 for the command line. */
function describeFailure(error: unknown, target: DatabaseTarget | undefined, table: string | undefined): { message: string; status: number } {
  if (error instanceof UsageError) return { message: error.message, status: 2 };
  if (error instanceof BarrierConfigError && error.code === 'ERR_TXBARRIER_NO_TABLE') return { message: error.message, status: 1 };
  // The store speaks to code (`force: true`); here the switch is --force.
  if (error instanceof BarrierConfigError) return { message: error.message.replace('force: true', '--force'), status: 2 };
  if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
    return { message: `${error.message}\nRun txbarrier --help for usage.`, status: 2 };
  }
  const chain = [...errorChain(error)];
  const codes = chain.map((e) => String(e.code));
  const message = chain.map((e) => e.message).find((m) => typeof m === 'string' && m !== '') ?? String(error);
  const where = target ? target.shown : 'the database';
  // better-sqlite3 refusing to open a file (missing with fileMustExist, not a database) has no code of its own.
  if (codes.some((code) => CONNECT_CODES.has(code)) || (target?.engine === 'sqlite' && /directory does not exist|unable to open/.test(String(message)))) {
    return { message: `cannot connect to ${where}: ${message}`, status: 1 };
  }
  if (codes.some((code) => MISSING_TABLE_CODES.has(code)) || /no such table/.test(String(message))) {
    return { message: `table ${table} does not exist in ${where} (${message}); create it with: txbarrier schema <url> --apply --table ${table}`, status: 1 };
  }
  return { message: `failed on ${where}: ${message}`, status: 1 };
}

async function main(argv: string[]): Promise<number> {
  let target: DatabaseTarget | undefined;
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
    target = parseUsageUrl(url);
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
      const { store, close } = await storeFromUrl(target, { table, poolSize: 1 });
      try {
        await store.ensureSchema();
      } finally {
        await close();
      }
      process.stdout.write(`schema ready: table ${table} in ${target.shown}\n`);
      return 0;
    }

    if (values.apply) throw new UsageError('--apply belongs to schema');
    const olderThan = values['older-than'];
    if (olderThan === undefined) throw new UsageError('prune needs --older-than, e.g. --older-than 7d');
    const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
    // Prune must not create an empty file where a typo put the path; schema --apply may.
    const { store, close } = await storeFromUrl(target, { table, poolSize: 1, create: false });
    const progress = process.stderr.isTTY ? (deleted: number) => process.stderr.write(`\rpruned ${deleted} rows...`) : undefined;
    let deleted: number;
    try {
      deleted = await store.prune({ olderThan, batchSize, force: values.force ?? false, onProgress: progress });
    } finally {
      if (progress) process.stderr.write('\r\x1b[K');
      await close();
    }
    process.stdout.write(`pruned ${deleted} rows older than ${olderThan} from ${table} in ${target.shown}\n`);
    return 0;
  } catch (error) {
    const { message, status } = describeFailure(error, target, table);
    process.stderr.write(`txbarrier: ${message}\n`);
    return status;
  }
}

/** The URL as the store reads it; its mistakes are the command line's (exit status 2). */
function parseUsageUrl(url: string): DatabaseTarget {
  try {
    return parseDatabaseUrl(url);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

void main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
