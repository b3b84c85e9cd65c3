/**
 * The Restate server for the Restate suite and benchmark: `restate-server` from the npm registry
 * (`RESTATE_SERVER`, fetched once per machine and version by servers/npm-fetch.sh), or the binary
 * TXBARRIER_RESTATE_BIN names. Started as a single node on free loopback ports, TCP only, with its
 * data in a temp folder that `stop()` deletes.
 *
 * The server runs under a shell that kills it when our stdin pipe closes, so it stops with the
 * process that started it even when that process is killed.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './index.js';

export const RESTATE_SERVER = '@restatedev/restate-server-linux-x64@1.7.12';

export interface RestateServer {
  /** `http://127.0.0.1:<port>`: the ingress, where clients invoke handlers. */
  readonly ingress: string;
  /** `http://127.0.0.1:<port>`: the admin API (`restateAdmin(admin)`). */
  readonly admin: string;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

/** The calls of a server's admin API the suite and benchmark make. */
export interface RestateAdmin {
  /** Registers the service endpoint at `uri` (`http://127.0.0.1:<port>`), replacing an earlier registration of its services. */
  register(uri: string): Promise<void>;
  /** Runs a query on the server's introspection tables (`sys_invocation`, `sys_journal`, …). */
  query<Row>(sql: string): Promise<Row[]>;
  /** Cancels an invocation: its handler gets a `TerminalError` (cancelled) and may compensate. */
  cancel(invocationId: string): Promise<void>;
}

/** The admin API at `url` (a server's `admin`). Each call rejects with the status and body of a failed request. */
export function restateAdmin(url: string): RestateAdmin {
  const call = async (method: string, path: string, body?: unknown) => {
    // JSON both ways: the query endpoint answers in Arrow's binary format unless asked for JSON.
    const headers = { accept: 'application/json', 'content-type': 'application/json' };
    const init: RequestInit = body === undefined ? { method, headers } : { method, headers, body: JSON.stringify(body) };
    const response = await fetch(`${url}${path}`, init);
    const text = await response.text();
    if (!response.ok) throw new Error(`Restate admin ${method} ${path}: ${response.status} ${text}`);
    return text;
  };
  return {
    register: async (uri) => void (await call('POST', '/deployments', { uri, force: true })),
    query: async <Row>(sql: string) => (JSON.parse(await call('POST', '/query', { query: sql })) as { rows: Row[] }).rows,
    cancel: async (invocationId) => void (await call('PATCH', `/invocations/${encodeURIComponent(invocationId)}/cancel`)),
  };
}

/** The `restate-server` binary: TXBARRIER_RESTATE_BIN, else the pinned npm package's, fetched once per machine. */
export function restateBinary(): Promise<string> {
  if (process.env.TXBARRIER_RESTATE_BIN) return Promise.resolve(process.env.TXBARRIER_RESTATE_BIN);
  const script = fileURLToPath(new URL('./npm-fetch.sh', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(script, [RESTATE_SERVER], (error, stdout, stderr) => {
      if (error) reject(new Error(`npm-fetch.sh ${RESTATE_SERVER} failed:\n${stderr.trim()}`, { cause: error }));
      else resolve(join(stdout.trim(), 'bin', 'restate-server'));
    });
  });
}

/** Starts a fresh single-node server and resolves once its admin API and ingress answer. */
export async function startRestate(): Promise<RestateServer> {
  const binary = await restateBinary();
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-restate-'));
  const [ingressPort, adminPort, nodePort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    ...process.env,
    RESTATE_BASE_DIR: dir,
    RESTATE_INGRESS__BIND_ADDRESS: `127.0.0.1:${ingressPort}`,
    RESTATE_ADMIN__BIND_ADDRESS: `127.0.0.1:${adminPort}`,
    RESTATE_BIND_ADDRESS: `127.0.0.1:${nodePort}`,
    RESTATE_ADVERTISED_ADDRESS: `http://127.0.0.1:${nodePort}/`,
    // A test server on a 2-core machine: few partitions, a small cache, nothing sent home, errors only.
    RESTATE_DEFAULT_NUM_PARTITIONS: '2',
    RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE: '256MB',
    RESTATE_DISABLE_TELEMETRY: 'true',
    RESTATE_LOG_FILTER: 'error',
    // Retries every 100 ms to 1 s instead of backing off to a minute, and never pauses (the default
    // pauses after 70 attempts): a test kills the service again and again, and an invocation in
    // flight at each kill would otherwise wait minutes between attempts, or pause for good.
    RESTATE_DEFAULT_RETRY_POLICY__INITIAL_INTERVAL: '100ms',
    RESTATE_DEFAULT_RETRY_POLICY__MAX_INTERVAL: '1s',
    RESTATE_DEFAULT_RETRY_POLICY__MAX_ATTEMPTS: '1000000',
  };
  const guard = '"$@" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid';
  const child = spawn('sh', ['-c', guard, 'sh', binary, '--listen-mode', 'tcp', '--no-logo'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: string) => (log = (log + chunk).slice(-4000));
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const [ingress, admin] = [`http://127.0.0.1:${ingressPort}`, `http://127.0.0.1:${adminPort}`];
  const stop = async () => {
    child.stdin.end();
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  let last: unknown;
  for (;;) {
    if (gone) throw new Error(`restate-server exited:\n${log}`);
    try {
      // Ready when both the admin API and the ingress answer their health checks.
      const [health, ingressUp] = await Promise.all([fetch(`${admin}/health`), fetch(`${ingress}/restate/health`)]);
      if (health.ok && ingressUp.ok) return { ingress, admin, stop };
      last = new Error(`health: admin ${health.status}, ingress ${ingressUp.status}`);
    } catch (error) {
      last = error; // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`restate-server did not answer on ${admin} and ${ingress} within 60 s:\n${log}`, { cause: last });
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
