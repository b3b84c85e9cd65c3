/**
 * How to reach every shared server that the tests, the benchmarks and the chaos runs use: one place,
 * each URL overridable by its environment variable. The defaults are the standard local ports
 * (.ci/run starts these servers when they are down).
 *
 * The databases default to `txbarrier_test`, which `ensureDatabase` creates if missing (the test suite's
 * global setup and the benchmark call it);
 * several people or branches running at once each set their own (TXBARRIER_POSTGRES_URL=…/txb_<name>).
 * A started peer (DTM, a Kafka broker, …) gets a module of its own here, `servers/<peer>.ts`.
 */
import { type ChildProcess, execFile, spawn, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';


/** The database engines the suites run on: SQLite (a file, no server) and the two servers below. */
export type EngineName = 'sqlite' | 'mysql' | 'postgres';
export const ENGINES: readonly EngineName[] = ['sqlite', 'mysql', 'postgres'];

/** MySQL or MariaDB. TXBARRIER_MYSQL_URL; defaults to `mysql://root@127.0.0.1:3306/txbarrier_test`. */
export const MYSQL_URL = process.env.TXBARRIER_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/txbarrier_test';

/** PostgreSQL. TXBARRIER_POSTGRES_URL; defaults to `postgres://postgres@127.0.0.1:5432/txbarrier_test`. */
export const POSTGRES_URL = process.env.TXBARRIER_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/txbarrier_test';

/** RabbitMQ. TXBARRIER_AMQP_URL; defaults to `amqp://guest:guest@127.0.0.1:5672`. */
export const AMQP_URL = process.env.TXBARRIER_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/**
 * NATS with JetStream. TXBARRIER_NATS_URL; defaults to `nats://127.0.0.1:4222`. A bare `host:port`
 * is accepted too (the outbox tests once read it that way) and given the `nats://` scheme.
 */
export const NATS_URL = withScheme(process.env.TXBARRIER_NATS_URL ?? 'nats://127.0.0.1:4222', 'nats');

/** Redis (BullMQ). TXBARRIER_REDIS_URL; defaults to `redis://127.0.0.1:6379`. */
export const REDIS_URL = process.env.TXBARRIER_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Creates the database a server URL names if it does not exist yet, connecting without naming it.
 * Two runs starting at once may both try: the loser's "already exists" is fine.
 */
export async function ensureDatabase(engine: 'mysql' | 'postgres', serverUrl: string): Promise<void> {
  const url = new URL(serverUrl);
  const database = decodeURIComponent(url.pathname.slice(1));
  if (engine === 'mysql') {
    const mysql = await import('mysql2/promise');
    url.pathname = '/';
    const connection = await mysql.createConnection({ uri: url.href, connectTimeout: 3000 });
    try {
      await connection.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` DEFAULT CHARACTER SET utf8mb4`);
    } finally {
      await connection.end();
    }
    return;
  }
  const { default: pg } = await import('pg');
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.href, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE "${database}"`).catch((error: { code?: string }) => {
        if (error.code !== '42P04' && error.code !== '23505') throw error;
      });
    }
  } finally {
    await client.end();
  }
}

/** A TCP port nobody listens on right now, from the OS (listen on 0), for a server we start. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * The path of a Go peer's binary, built by `go-build.sh` on this machine's first use and cached
 * outside the repo (`~/.cache/txbarrier`, or `TXBARRIER_CACHE`). A cold build can take minutes.
 */
export function goBinary(name: string, target: string, flags: readonly string[] = []): Promise<string> {
  const script = fileURLToPath(new URL('./go-build.sh', import.meta.url));
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/local/go/bin` };
  return new Promise((resolve, reject) => {
    execFile(script, [name, target, ...flags], { env, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`go-build.sh ${name} ${target} failed:\n${stderr.trim().split('\n').slice(-20).join('\n')}`, { cause: error }));
      else resolve(stdout.trim());
    });
  });
}

/**
 * Spawns `binary` under a shell that sends it `stopSignal` (default TERM) when our stdin pipe closes, so
 * a server stops with the process that started it even when that process is killed. Closing the
 * child's stdin stops it; its stdout and stderr are pipes unless `options.stdio` says otherwise.
 */
export function spawnGuarded(binary: string, args: readonly string[], options: SpawnOptions & { stopSignal?: 'TERM' | 'INT' } = {}): ChildProcess {
  const { stopSignal = 'TERM', ...spawnOptions } = options;
  const guard = `"$@" & pid=$!; cat >/dev/null; kill -${stopSignal} $pid 2>/dev/null; wait $pid`;
  return spawn('sh', ['-c', guard, 'sh', binary, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
}

/** The process id of the server `spawnGuarded` started (the guarding shell's child), while it runs; Linux only. */
export function guardedPid(guard: ChildProcess): number | undefined {
  try {
    const children = readFileSync(`/proc/${guard.pid}/task/${guard.pid}/children`, 'utf8').trim();
    return children ? Number(children.split(' ')[0]) : undefined;
  } catch {
    return undefined;
  }
}

function withScheme(url: string, scheme: string): string {
  return url.includes('://') ? url : `${scheme}://${url}`;
}
