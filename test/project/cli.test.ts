/** The `txbarrier` command, spawned as a user runs it, against a temp SQLite file and the real servers. */
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { parseDatabaseUrl } from '../../adapters/url.js';
import { idempotencySchemaSql } from '../../src/idempotency/guard.js';
import { createOutbox } from '../../src/messaging/outbox/index.js';
import { outboxSql } from '../../src/messaging/outbox/sql.js';
import { Barrier, mysqlDialect, postgresDialect, sqliteDialect } from '../../src/index.js';
import { mysqlPool, postgresPool } from '../support/server-harness.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const TSX = join(process.cwd(), 'node_modules/.bin/tsx');
const CLI = join(process.cwd(), 'bin/txbarrier.ts');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function txbarrier(args: string[], nodeOptions: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  const [command, commandArgs] = nodeOptions.length ? [process.execPath, ['--import', 'tsx', ...nodeOptions, CLI, ...args]] : [TSX, [CLI, ...args]];
  return new Promise((resolve) => {
    execFile(command, commandArgs, { timeout: 20_000, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const DAY = 86_400;
const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });
const gidOf = () => `cli-${randomUUID()}`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'txbarrier-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('txbarrier: usage', () => {
  it('prints help with --help (status 0) and without a command (status 2)', async () => {
    const [help, bare] = await Promise.all([txbarrier(['--help']), txbarrier([])]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/txbarrier schema <url>/);
    expect(help.stdout).toMatch(/txbarrier prune <url> --older-than/);
    expect(bare.status).toBe(2);
    expect(bare.stdout).toBe(help.stdout);
  });

  it('prints the DDL of each engine without connecting to anything', async () => {
    // Nothing listens on port 1: printing must not need the server.
    const runs = await Promise.all([
      txbarrier(['schema', 'mysql://root@127.0.0.1:1/test']),
      txbarrier(['schema', 'postgresql://postgres@127.0.0.1:1/test', '--table', 'app.barrier']),
      txbarrier(['schema', `sqlite:${join(dir, 'never-created.db')}`]),
    ]);
    const ddl = (statements: string[]) => statements.map((s) => `${s};\n`).join('\n');
    expect(runs.map((r) => [r.status, r.stdout, r.stderr])).toEqual([
      [0, ddl(mysqlDialect.createSchema('dtm_barrier.barrier')), ''],
      [0, ddl(postgresDialect.createSchema('app.barrier')), ''],
      [0, ddl(sqliteDialect.createSchema('barrier')), ''],
    ]);
    expect(existsSync(join(dir, 'never-created.db'))).toBe(false);
  });

  it('refuses bad input with a clear message and status 2', async () => {
    new Database(join(dir, 'usage.db')).close();
    const db = `sqlite:${join(dir, 'usage.db')}`;
    const cases: [string[], RegExp][] = [
      [['prune', 'ftp://host/db', '--older-than', '7d'], /unsupported URL scheme ftp:/],
      [['prune', 'not a url', '--older-than', '7d'], /not a database URL: "not a url"/],
      [['prune', db], /prune needs --older-than/],
      [['prune', db, '--older-than', '12h'], /under one day.*Pass --force/],
      [['prune', db, '--older-than', '7d', '--batch-size', 'lots'], /--batch-size must be a positive integer/],
      [['prune', db, '--older-than', '7d', '--table', 'x; drop table y'], /is not an identifier/],
      [['prune', db, '--older-than', '7d', '--bogus'], /Unknown option '--bogus'[\s\S]*--help/],
      [['vacuum', db], /unknown command "vacuum"/],
    ];
    const runs = await Promise.all(cases.map(([args]) => txbarrier(args)));
    runs.forEach((run, i) => {
      expect(run.status, cases[i]![0].join(' ')).toBe(2);
      expect(run.stderr, cases[i]![0].join(' ')).toMatch(cases[i]![1]);
      expect(run.stdout).toBe('');
    });
  });

  it('says which driver to install when it is missing', async () => {
    // Resolving the driver fails in the child, as it does when it is not installed.
    const hook = join(dir, 'no-pg-hook.mjs');
    const register = join(dir, 'no-pg.mjs');
    writeFileSync(
      hook,
      `export async function resolve(specifier, context, next) {
        if (specifier === 'pg') throw Object.assign(new Error("Cannot find package 'pg'"), { code: 'ERR_MODULE_NOT_FOUND' });
        return next(specifier, context);
      }`,
    );
    writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(`file://${hook}`)});`);
    const run = await txbarrier(['prune', POSTGRES_URL, '--older-than', '7d'], ['--import', register]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/the pg driver is not installed; .*npm install pg/);
  });

  it('without better-sqlite3, opens a SQLite file through node:sqlite where the runtime has it, else says what to install', async () => {
    const hook = join(dir, 'no-better-sqlite3-hook.mjs');
    const register = join(dir, 'no-better-sqlite3.mjs');
    writeFileSync(
      hook,
      `export async function resolve(specifier, context, next) {
        if (specifier === 'better-sqlite3') throw Object.assign(new Error("Cannot find package 'better-sqlite3'"), { code: 'ERR_MODULE_NOT_FOUND' });
        return next(specifier, context);
      }`,
    );
    writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(`file://${hook}`)});`);
    const file = join(dir, `native-free-${randomUUID()}.db`);
    const run = await txbarrier(['schema', `sqlite:${file}`, '--apply'], ['--no-warnings', '--import', register]);
    const builtIn = (process as { getBuiltinModule?: (name: string) => { DatabaseSync?: { prototype: object } } | undefined }).getBuiltinModule?.('node:sqlite');
    if (builtIn?.DatabaseSync && 'location' in builtIn.DatabaseSync.prototype) {
      expect(run).toMatchObject({ status: 0, stdout: `schema ready: table barrier in sqlite:${file}\n` });
      const db = new Database(file);
      try {
        expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'barrier'").all()).toHaveLength(1);
      } finally {
        db.close();
      }
    } else {
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/the better-sqlite3 driver is not installed; .*npm install better-sqlite3@12 .*node:sqlite/);
    }
  });
});

describe('txbarrier: sqlite', () => {
  it('applies the schema, then prunes only the old rows and prints a summary', async () => {
    const file = join(dir, 'app.db');
    const url = `sqlite:${file}`;
    const applied = await txbarrier(['schema', url, '--apply']);
    expect(applied).toMatchObject({ status: 0, stdout: `schema ready: table barrier in sqlite:${file}\n` });

    const db = new Database(file);
    try {
      const store = sqliteStore(db);
      const old = [gidOf(), gidOf(), gidOf()];
      const recent = gidOf();
      for (const gid of [...old, recent]) await action(gid).call(store, () => 'done');
      db.prepare(`UPDATE barrier SET create_time = datetime('now', '-10 days') WHERE gid IN (?, ?, ?)`).run(...old);

      const pruned = await txbarrier(['prune', url, '--older-than', '7d', '--batch-size', '2']);
      expect(pruned).toEqual({ status: 0, stdout: `pruned 3 rows older than 7d from barrier in sqlite:${file}\n`, stderr: '' });
      expect(db.prepare('SELECT gid FROM barrier').all()).toEqual([{ gid: recent }]);
    } finally {
      db.close();
    }
  });

  it('reports a missing file and a missing table with status 1, creating nothing', async () => {
    const missing = join(dir, 'typo.db');
    const empty = join(dir, 'empty.db');
    new Database(empty).close();
    const [noFile, noTable] = await Promise.all([
      txbarrier(['prune', `sqlite:${missing}`, '--older-than', '7d']),
      txbarrier(['prune', `sqlite:${empty}`, '--older-than', '7d', '--table', 'barrier']),
    ]);
    expect(noFile.status).toBe(1);
    expect(noFile.stderr).toMatch(new RegExp(`cannot connect to sqlite:${missing}`));
    expect(existsSync(missing)).toBe(false);
    expect(noTable.status).toBe(1);
    expect(noTable.stderr).toMatch(/table barrier does not exist in .*txbarrier schema <url> --apply --table barrier\n/);
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!hasScript)('shows a progress line on a terminal', async () => {
    const file = join(dir, 'tty.db');
    const db = new Database(file);
    const store = sqliteStore(db);
    await store.ensureSchema();
    const gids = [gidOf(), gidOf(), gidOf()];
    for (const gid of gids) await action(gid).call(store, () => 'done');
    db.prepare(`UPDATE barrier SET create_time = datetime('now', '-30 days')`).run();
    db.close();
    // `script` gives the command a pseudo-terminal, so process.stderr.isTTY holds.
    const command = `${TSX} ${CLI} prune sqlite:${file} --older-than 7d --batch-size 1`;
    const run = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    for (const n of [1, 2, 3]) expect(run.stdout).toContain(`\rpruned ${n} rows...`);
    expect(run.stdout).toContain(`pruned 3 rows older than 7d from barrier`);
  });
});

interface ServerCase {
  name: string;
  skip: boolean;
  url: string;
  /** Raw SQL on the server, and cleanup of `table`. */
  open(table: string): {
    query(sql: string): Promise<unknown>;
    count(table: string): Promise<number>;
    close(): Promise<void>;
  };
  ago(days: number): string;
}

const servers: ServerCase[] = [
  {
    name: 'mysql',
    skip: !hasServer('mysql'),
    url: MYSQL_URL,
    open(table) {
      const pool = mysqlPool({ connectionLimit: 2 });
      return {
        query: (sql) => pool.query(sql),
        count: async (t) => Number(((await pool.query(`SELECT COUNT(*) AS n FROM ${t}`))[0] as { n: number }[])[0]!.n),
        close: async () => {
          await pool.query(`DROP TABLE IF EXISTS ${table}`);
          await pool.end();
        },
      };
    },
    ago: (days) => `NOW() - INTERVAL ${days} DAY`,
  },
  {
    name: 'postgres',
    skip: !hasServer('postgres'),
    url: POSTGRES_URL,
    open(table) {
      const pool = postgresPool({ max: 2 });
      return {
        query: (sql) => pool.query(sql),
        count: async (t) => Number((await pool.query(`SELECT COUNT(*) AS n FROM ${t}`)).rows[0].n),
        close: async () => {
          await pool.query(`DROP TABLE IF EXISTS ${table}`);
          await pool.end();
        },
      };
    },
    ago: (days) => `CURRENT_TIMESTAMP - make_interval(days => ${days})`,
  },
];

for (const server of servers) {
  describe.skipIf(server.skip)(`txbarrier: ${server.name}`, () => {
    const table = `cli_test_${randomUUID().slice(0, 8)}`;
    let db: ReturnType<ServerCase['open']>;
    beforeAll(() => {
      db = server.open(table);
    });
    afterAll(async () => {
      await db?.close();
    });

    it('applies the schema idempotently and prunes only the old rows', async () => {
      const url = server.url;
      for (let i = 0; i < 2; i++) {
        expect(await txbarrier(['schema', url, '--apply', '--table', table])).toMatchObject({ status: 0, stderr: '' });
      }
      const values = (n: number, days: number) =>
        Array.from({ length: n }, (_, i) => `('saga', '${gidOf()}', '0${i % 9}', 'action', '01', 'action', ${server.ago(days)}, ${server.ago(days)})`);
      await db.query(
        `INSERT INTO ${table} (trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time) VALUES ` +
          [...values(25, 30), ...values(4, 1)].join(', '),
      );
      const run = await txbarrier(['prune', url, '--older-than', '7d', '--batch-size', '10', '--table', table]);
      expect(run).toEqual({ status: 0, stdout: `pruned 25 rows older than 7d from ${table} in ${url}\n`, stderr: '' });
      expect(await db.count(table)).toBe(4);
    });

    it('reports a missing table and an unreachable server with status 1, password hidden', async () => {
      const unreachable = new URL(server.url);
      unreachable.port = '1';
      unreachable.username = 'someone';
      unreachable.password = 'secret';
      const [noTable, noServer] = await Promise.all([
        txbarrier(['prune', server.url, '--older-than', '7d', '--table', `cli_missing_${randomUUID().slice(0, 8)}`]),
        txbarrier(['prune', unreachable.toString(), '--older-than', '7d']),
      ]);
      expect(noTable.status).toBe(1);
      expect(noTable.stderr).toMatch(/table (cli_missing_\w+) does not exist in .*txbarrier schema <url> --apply --table \1\n/);
      expect(noServer.status).toBe(1);
      expect(noServer.stderr).toMatch(/cannot connect to .*someone:\*\*\*@127\.0\.0\.1:1\/.*ECONNREFUSED/);
      expect(noServer.stderr).not.toContain('secret');
    });
  });
}

describe('txbarrier: secrets and arguments', () => {
  const SECRET = 'S3cretPW';

  it('never prints a password: in the URL, in ?password=, in a malformed URL, in shown, in an error or its cause', async () => {
    const runs = await Promise.all([
      txbarrier(['prune', `postgres://admin:${SECRET}@127.0.0.1:1/db`, '--older-than', '7d']),
      txbarrier(['prune', `postgres://admin@127.0.0.1:1/db?password=${SECRET}`, '--older-than', '7d']),
      txbarrier(['prune', `mysql://admin@127.0.0.1:1/db?sslmode=off&Password=${SECRET}`, '--older-than', '7d']),
      txbarrier(['prune', `postgres//admin:${SECRET}@127.0.0.1:1/db`, '--older-than', '7d']),
      txbarrier(['prune', `postgres://admin:${SECRET}@127.0.0.1:1/db`, `postgres://admin:${SECRET}@127.0.0.1:1/db`, '--older-than', '7d']),
      txbarrier(['schema', `postgres://admin:${encodeURIComponent(`${SECRET}/x`)}@127.0.0.1:1/db`, '--apply']),
    ]);
    for (const run of runs) {
      expect(run.status, run.stderr).not.toBe(0);
      expect(run.stderr).not.toBe('');
      expect(`${run.stdout}${run.stderr}`).not.toContain(SECRET);
    }
    expect(runs[1]!.stderr).toMatch(/cannot connect to postgres:\/\/admin@127\.0\.0\.1:1\/db\?password=\*\*\*/);
    const target = parseDatabaseUrl(`postgres://admin:${SECRET}@db.internal/app?application_name=x&password=${SECRET}`);
    expect(target.shown).toBe('postgres://admin:***@db.internal/app?application_name=x&password=***');
    const error = (() => {
      try {
        parseDatabaseUrl(`postgres//admin:${SECRET}@db.internal/app`);
      } catch (thrown) {
        return thrown as Error;
      }
    })();
    expect(error).toMatchObject({ code: 'ERR_TXBARRIER_URL' });
    expect(`${error!.message} ${String(error!.cause)}`).not.toContain(SECRET);
  });

  it('reads the URL from TXBARRIER_DATABASE_URL, so it stays out of the process list', async () => {
    const file = join(dir, `env-${randomUUID()}.db`);
    const env = { TXBARRIER_DATABASE_URL: `sqlite:${file}` };
    expect(await txbarrier(['schema', '--apply'], [], env)).toEqual({ status: 0, stdout: `schema ready: table barrier in sqlite:${file}\n`, stderr: '' });
    expect(await txbarrier(['prune', '--older-than', '7d'], [], env)).toEqual({ status: 0, stdout: `pruned 0 rows older than 7d from barrier in sqlite:${file}\n`, stderr: '' });
    const missing = await txbarrier(['prune', '--older-than', '7d'], [], { TXBARRIER_DATABASE_URL: '' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/TXBARRIER_DATABASE_URL/);
  });

  it('refuses bad arguments with status 2 before connecting to anything', async () => {
    // The file does not exist and nothing listens on port 1: a connection attempt would answer 1.
    const nowhere = `sqlite:${join(dir, 'missing', 'nowhere.db')}`;
    const runs = await Promise.all([
      txbarrier(['prune', nowhere, '--older-than=-1d']),
      txbarrier(['prune', nowhere, '--older-than', '7d', '--batch-size', '0']),
      txbarrier(['prune', 'postgres://x@127.0.0.1:1/db', '--older-than', '1h']),
      txbarrier(['outbox', 'prune', nowhere, '--older-than', 'soon']),
      txbarrier(['idempotency', 'prune', nowhere, '--batch-size', '1.5']),
    ]);
    for (const run of runs) expect([run.status, run.stderr]).toEqual([2, expect.not.stringMatching(/cannot connect/)]);
    expect(runs[2]!.stderr).toMatch(/under one day.*--force/);
  });
});

describe('txbarrier idempotency', () => {
  it('prints, applies and prunes the idempotency-key table', async () => {
    const file = join(dir, `keys-${randomUUID()}.db`);
    const printed = await txbarrier(['idempotency', 'schema', `sqlite:${file}`, '--table', 'keys']);
    expect(printed).toEqual({ status: 0, stdout: idempotencySchemaSql('sqlite', 'keys').map((s) => `${s};\n`).join('\n'), stderr: '' });
    expect(existsSync(file)).toBe(false);
    expect(await txbarrier(['idempotency', 'schema', `sqlite:${file}`, '--table', 'keys', '--apply'])).toMatchObject({ status: 0 });
    const db = new Database(file);
    try {
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'keys'").all()).toHaveLength(1);
    } finally {
      db.close();
    }
    expect(await txbarrier(['idempotency', 'prune', `sqlite:${file}`, '--table', 'keys'])).toEqual({
      status: 0,
      stdout: `pruned 0 expired rows from keys in sqlite:${file}\n`,
      stderr: '',
    });
    const refused = await txbarrier(['idempotency', 'prune', `sqlite:${file}`, '--older-than', '7d']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/deletes what has expired/);
  });
});

describe('txbarrier outbox', () => {
  it('prints and applies the outbox table, lists pending and parked messages, requeues and prunes', async () => {
    const file = join(dir, `outbox-${randomUUID()}.db`);
    const url = `sqlite:${file}`;
    expect(await txbarrier(['outbox', 'schema', url])).toEqual({ status: 0, stdout: outboxSql('sqlite', 'txbarrier_outbox').createSchema().map((s) => `${s};\n`).join('\n'), stderr: '' });
    expect(await txbarrier(['outbox', 'schema', url, '--apply'])).toMatchObject({ status: 0 });
    const db = new Database(file);
    const outbox = createOutbox(sqliteStore(db));
    const messageId = await outbox.store.transaction((connection) => outbox.enqueue(connection.tx, { topic: 'orders', payload: { n: 1 } }));
    db.close();
    const pending = await txbarrier(['outbox', 'pending', url]);
    expect(pending.status).toBe(0);
    expect(pending.stdout).toMatch(new RegExp(`^${messageId}\torders\t-\tattempts=0\t`));
    expect(await txbarrier(['outbox', 'parked', url])).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(await txbarrier(['outbox', 'requeue', url, messageId])).toEqual({ status: 0, stdout: 'requeued 0 of 1 messages\n', stderr: '' });
    expect(await txbarrier(['outbox', 'prune', url, '--older-than', '1d'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^pruned 0 rows older than 1d/) });
    expect((await txbarrier(['outbox', 'requeue', url])).status).toBe(2);
    expect((await txbarrier(['outbox', 'pending', url, '--limit', 'x'])).status).toBe(2);
  });
});
