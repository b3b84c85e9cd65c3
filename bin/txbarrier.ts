#!/usr/bin/env node
/**
 * `txbarrier schema <url> [--apply]` and `txbarrier prune <url> --older-than 7d`: the barrier
 * table's DDL and its upkeep, for any engine the URL names, and the same for the idempotency-key
 * table (`txbarrier idempotency schema|prune <url>`). Drivers are the user's own dependencies,
 * loaded only when a command needs a connection.
 */
import { createServer } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sendResponse, webRequest } from '../adapters/http/node-web.js';
import { type DatabaseTarget, parseDatabaseUrl, secretsOf, storeFromUrl } from '../adapters/url.js';
import { createDashboard, type Dashboard } from '../src/dashboard/dashboard.js';
import { errorChain } from '../src/dialects/dialect.js';
import { DEFAULT_IDEMPOTENCY_TABLE, ensureIdempotencySchema, idempotencySchemaSql, pruneIdempotencyKeys } from '../src/idempotency/guard.js';
import { type BarrierStore, BarrierConfigError, type DialectName, dialects, tableMetrics } from '../src/index.js';
import { createOutbox, DEFAULT_OUTBOX_TABLE, type OutboxEntry } from '../src/messaging/outbox/index.js';
import { outboxSql } from '../src/messaging/outbox/sql.js';
import { parseDuration } from '../src/duration.js';
import { checkPrune } from '../src/transaction/define-store.js';

/** Where the CLI reads the database URL when the command line gives none: arguments show in `ps`, the environment does not. */
const URL_VARIABLE = 'TXBARRIER_DATABASE_URL';
/** The token `dashboard --allow-actions` requires of every action; from the environment for the same reason. */
const TOKEN_VARIABLE = 'TXBARRIER_DASHBOARD_TOKEN';

const HELP = `Usage:
  txbarrier schema <url> [--table T] [--apply]
      Print the DDL of the barrier table, or with --apply create whatever is missing.
  txbarrier prune <url> --older-than <duration> [--batch-size N] [--force] [--table T]
      Delete barrier rows older than <duration> (7d, 36h, ...) in batches of N (default 1000).
  txbarrier idempotency schema <url> [--table T] [--apply]
  txbarrier idempotency prune <url> [--batch-size N] [--table T]
      The same for the idempotency-key table (default idempotency_key); prune deletes expired keys.
  txbarrier outbox schema <url> [--table T] [--apply]
  txbarrier outbox prune <url> --older-than <duration> [--batch-size N] [--table T]
      The same for the outbox table (default txbarrier_outbox); prune deletes sent messages.
  txbarrier outbox pending|parked <url> [--limit N] [--table T]
      List messages waiting to be published, or parked after their last attempt (default 50).
  txbarrier outbox requeue <url> <id>... [--table T]
      Make parked messages pending again.
  txbarrier dashboard <url> [--port N] [--host H] [--table T] [--outbox-table T]
                    [--idempotency-table T] [--retention 7d] [--allow-actions] [--show-payloads]
      Serve the operations dashboard (outbox, barrier table, idempotency keys) on
      http://127.0.0.1:4100/ until interrupted, and the table gauges at /metrics. Read-only unless --allow-actions, which
      needs a token in the environment variable TXBARRIER_DASHBOARD_TOKEN (the page asks
      for it). --show-payloads lets the page open messages' headers and payloads.

  <url> picks the engine:
      mysql://user:password@host:3306/database
      postgres://user:password@host:5432/database   (or postgresql://)
      sqlite:path/to/file.db                        (or sqlite:///absolute/path.db)
  Leave <url> out to read it from the environment variable TXBARRIER_DATABASE_URL, which other
  users cannot see in the process list. Passwords are never printed.

  --table      table or schema.table (default: dtm_barrier.barrier; barrier on SQLite)
  --force      allow a retention under one day. Rows must outlast the coordinator's longest
               retry window, or a late dangling action finds no barrier and applies.

Exit status: 0 done, 1 the database failed (unreachable, missing table, ...), 2 bad usage.`;

/** A problem with what the user typed: exit status 2. */
class UsageError extends Error {}

interface PruneRequest {
  olderThan?: string;
  batchSize?: number;
  force: boolean;
  onProgress?: (deleted: number) => void;
}

/** A table the CLI looks after: its DDL, its creation and its upkeep. */
interface TableKind {
  defaultTable(engine: DialectName): string;
  ddl(engine: DialectName, table: string): string[];
  ensure(store: BarrierStore<unknown>, table: string): Promise<void>;
  /** Whether prune takes --older-than (a retention) or deletes by the rows' own expiry. */
  retention: boolean;
  /** Checks a prune's arguments before anything connects; throws `BarrierConfigError`. */
  checkPrune(request: PruneRequest): void;
  prune(store: BarrierStore<unknown>, table: string, request: PruneRequest): Promise<number>;
}

const TABLES: Record<'barrier' | 'idempotency' | 'outbox', TableKind> = {
  barrier: {
    defaultTable: (engine) => dialects[engine].defaultTable,
    ddl: (engine, table) => dialects[engine].createSchema(table),
    ensure: (store) => store.ensureSchema(),
    retention: true,
    checkPrune: ({ olderThan, batchSize, force }) => void checkPrune({ olderThan: olderThan!, batchSize, force }),
    prune: (store, _table, { olderThan, ...rest }) => store.prune({ olderThan: olderThan!, ...rest }),
  },
  idempotency: {
    defaultTable: () => DEFAULT_IDEMPOTENCY_TABLE,
    ddl: (engine, table) => idempotencySchemaSql(engine, table),
    ensure: (store, table) => ensureIdempotencySchema(store, { table }),
    retention: false,
    checkPrune: () => undefined,
    prune: (store, table, { batchSize, onProgress }) => pruneIdempotencyKeys(store, { table, batchSize, onProgress }),
  },
  outbox: {
    defaultTable: () => DEFAULT_OUTBOX_TABLE,
    ddl: (engine, table) => outboxSql(engine, table).createSchema(),
    ensure: (store, table) => createOutbox(store, { table }).ensureSchema(),
    retention: true,
    checkPrune: ({ olderThan }) => void parseDuration(olderThan!, 'olderThan'),
    prune: (store, table, { olderThan, batchSize }) => createOutbox(store, { table }).prune({ olderThan: olderThan!, batchSize }),
  },
};

const KINDS = Object.keys(TABLES) as (keyof typeof TABLES)[];

/** One line per message, tab-separated, for a terminal or `cut`. */
function listing(entries: OutboxEntry[]): string {
  return entries
    .map((e) => [e.id, e.topic, e.key ?? '-', `attempts=${e.attempts}`, e.availableAt.toISOString(), e.lastError ?? ''].join('\t') + '\n')
    .join('');
}

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
        limit: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'outbox-table': { type: 'string' },
        'idempotency-table': { type: 'string' },
        retention: { type: 'string' },
        'allow-actions': { type: 'boolean' },
        'show-payloads': { type: 'boolean' },
      },
    });
    const dashboardOnly = DASHBOARD_FLAGS.filter((flag) => values[flag] !== undefined);
    if (positionals[0] !== 'dashboard' && dashboardOnly.length > 0) throw new UsageError(`--${dashboardOnly[0]} belongs to dashboard`);
    const kindName = KINDS.find((name) => name !== 'barrier' && name === positionals[0]) ?? 'barrier';
    const [command, ...rest] = kindName === 'barrier' ? positionals : positionals.slice(1);
    // With the variable set, the first argument is the URL only if it has a scheme (requeue's ids have none).
    const fromEnvironment = process.env[URL_VARIABLE] ? !/^[a-z][a-z0-9+.-]*:/i.test(rest[0] ?? '') : false;
    const [url, ...extra] = fromEnvironment ? [process.env[URL_VARIABLE]!, ...rest] : rest;
    const kind = TABLES[kindName];
    if (values.help || command === 'help' || command === undefined) {
      process.stdout.write(`${HELP}\n`);
      return command === undefined && !values.help ? 2 : 0;
    }
    const outboxCommands = kindName === 'outbox' ? ['pending', 'parked', 'requeue'] : [];
    if (command !== 'schema' && command !== 'prune' && command !== 'dashboard' && !outboxCommands.includes(command)) {
      throw new UsageError(`unknown command ${JSON.stringify(command)}; run txbarrier --help`);
    }
    if (url === undefined) throw new UsageError(`${command} needs a database URL (an argument, or the environment variable ${URL_VARIABLE}); run txbarrier --help`);
    if (extra.length > 0 && command !== 'requeue') throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    target = parseUsageUrl(url);
    table = values.table ?? kind.defaultTable(target.engine);
    dialects[target.engine].quoteTable(table);

    if (command === 'dashboard') {
      if (kindName !== 'barrier') throw new UsageError(`unknown command ${JSON.stringify(command)}; run txbarrier --help`);
      return await serveDashboard(target, table, values);
    }

    if (outboxCommands.includes(command)) {
      if (command === 'requeue' && extra.length === 0) throw new UsageError('requeue needs the ids of the parked messages');
      const limit = values.limit === undefined ? 50 : Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer; got ${values.limit}`);
      const { store, close } = await storeFromUrl(target, { poolSize: 1, create: false });
      try {
        const outbox = createOutbox(store, { table });
        if (command === 'requeue') process.stdout.write(`requeued ${await outbox.requeue(extra)} of ${extra.length} messages\n`);
        else process.stdout.write(listing(command === 'pending' ? await outbox.pending({ limit }) : await outbox.parked({ limit })));
      } finally {
        await close();
      }
      return 0;
    }

    if (command === 'schema') {
      if (values['older-than'] !== undefined || values['batch-size'] !== undefined || values.force) {
        throw new UsageError('--older-than, --batch-size and --force belong to prune');
      }
      if (!values.apply) {
        process.stdout.write(kind.ddl(target.engine, table).map((statement) => `${statement};\n`).join('\n'));
        return 0;
      }
      const { store, close } = await storeFromUrl(target, { table: kindName === 'barrier' ? table : undefined, poolSize: 1 });
      try {
        await kind.ensure(store, table);
      } finally {
        await close();
      }
      process.stdout.write(`schema ready: table ${table} in ${target.shown}\n`);
      return 0;
    }

    if (values.apply) throw new UsageError('--apply belongs to schema');
    const olderThan = values['older-than'];
    if (kind.retention && olderThan === undefined) throw new UsageError('prune needs --older-than, e.g. --older-than 7d');
    if (!kind.retention && (olderThan !== undefined || values.force)) {
      throw new UsageError(`${kindName} prune deletes what has expired: --older-than and --force do not apply`);
    }
    const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
    if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1)) {
      throw new UsageError(`--batch-size must be a positive integer; got ${values['batch-size']}`);
    }
    // Every argument is checked before connecting: an unreachable database must not hide a typo.
    kind.checkPrune({ olderThan, batchSize, force: values.force ?? false });
    // Prune must not create an empty file where a typo put the path; schema --apply may.
    const { store, close } = await storeFromUrl(target, { table: kindName === 'barrier' ? table : undefined, poolSize: 1, create: false });
    const progress = process.stderr.isTTY ? (deleted: number) => process.stderr.write(`\rpruned ${deleted} rows...`) : undefined;
    let deleted: number;
    try {
      deleted = await kind.prune(store, table, { olderThan, batchSize, force: values.force ?? false, onProgress: progress });
    } finally {
      if (progress) process.stderr.write('\r\x1b[K');
      await close();
    }
    const which = olderThan === undefined ? 'expired rows' : `rows older than ${olderThan}`;
    process.stdout.write(`pruned ${deleted} ${which} from ${table} in ${target.shown}\n`);
    return 0;
  } catch (error) {
    const { message, status } = describeFailure(error, target, table);
    process.stderr.write(`txbarrier: ${scrubbed(message, [...argv, process.env[URL_VARIABLE] ?? ''])}\n`);
    return status;
  }
}

const DASHBOARD_FLAGS = ['port', 'host', 'outbox-table', 'idempotency-table', 'retention', 'allow-actions', 'show-payloads'] as const;

interface DashboardFlags {
  port?: string;
  host?: string;
  'outbox-table'?: string;
  'idempotency-table'?: string;
  retention?: string;
  'allow-actions'?: boolean;
  'show-payloads'?: boolean;
}

/**
 * Serves the dashboard until SIGINT or SIGTERM. Loopback unless --host says otherwise: the page
 * shows operational data to whoever reaches it. Every argument is checked before connecting.
 */
async function serveDashboard(target: DatabaseTarget, table: string, flags: DashboardFlags): Promise<number> {
  const port = flags.port === undefined ? 4100 : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port must be a port number; got ${flags.port}`);
  const host = flags.host ?? '127.0.0.1';
  const token = process.env[TOKEN_VARIABLE] ?? '';
  if (flags['allow-actions'] && token.length < 16) {
    throw new UsageError(`--allow-actions needs a token of at least 16 characters in the environment variable ${TOKEN_VARIABLE}`);
  }
  const expected = Buffer.from(`Bearer ${token}`);
  const authorize = (request: Request) => {
    const sent = Buffer.from(request.headers.get('authorization') ?? '');
    return sent.length === expected.length && timingSafeEqual(sent, expected);
  };
  const options = {
    outbox: { table: flags['outbox-table'] },
    idempotency: { table: flags['idempotency-table'] },
    barrier: { retention: flags.retention ?? '7d' },
    showPayloads: flags['show-payloads'] === true,
    ...(flags['allow-actions'] ? { actions: { authorize, promptForToken: true } } : {}),
  };
  // A server's pool connects on first use, so a bad option is reported before the database is tried.
  const { store, close } = await storeFromUrl(target, { table, poolSize: 2, create: false });
  let dashboard: Dashboard<Request>;
  try {
    // The table gauges of issue #39 at /metrics, for a Prometheus scrape beside the page.
    const outbox = createOutbox(store, { table: flags['outbox-table'] ?? DEFAULT_OUTBOX_TABLE });
    dashboard = createDashboard(store, { ...options, metrics: tableMetrics({ store, outbox }) });
  } catch (error) {
    await close();
    throw error;
  }
  const server = createServer((req, res) => {
    const request = webRequest(req, req.url ?? '/');
    dashboard
      .handle(request, '', request)
      .then((response) => sendResponse(res, response))
      .catch((error: unknown) => {
        const { message } = describeFailure(error, target, table);
        const text = scrubbed(message, [process.env[URL_VARIABLE] ?? '', target.engine === 'sqlite' ? '' : target.url]);
        process.stderr.write(`txbarrier dashboard: ${text}\n`);
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ code: 'ERR_TXBARRIER_DASHBOARD_DATABASE', message: text }));
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const shown = typeof address === 'object' && address ? `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address);
  process.stdout.write(`txbarrier dashboard on http://${shown}/ for ${target.shown} (${flags['allow-actions'] ? 'actions enabled' : 'read-only'})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
  await close();
  return 0;
}

/** A driver's message may quote what it was given: every secret any database URL in `sources` carries becomes `***`. */
function scrubbed(message: string, sources: string[]): string {
  const secrets = sources.flatMap(secretsOf).sort((a, b) => b.length - a.length);
  return secrets.reduce((text, secret) => text.replaceAll(secret, '***'), message);
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
