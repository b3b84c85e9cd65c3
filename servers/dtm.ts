/**
 * The DTM server (github.com/dtm-labs/dtm) the DTM suites run as their coordinator: built from its
 * Go module at a pinned release, started on free ports with its embedded BoltDB store in a fresh
 * temporary directory and a configuration that shortens its timings, stopped with the process that
 * started it. `TXBARRIER_DTM_BIN` names a `dtm` binary you already have; `TXBARRIER_DTM_URL`
 * (`http://host:port`, with `TXBARRIER_DTM_GRPC` = `host:port`) uses a running server instead.
 *
 * `npm run dtm` starts one for you and prints where it listens, until Ctrl-C (`-- --build` only builds it).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, goBinary, guardedPid, spawnGuarded } from './index.js';

/** The newest release the module proxy serves (it refuses the version list; v1.19.1 and v1.20.0 are not served). */
export const DTM_VERSION = 'v1.19.0';
export const DTM_MODULE = `github.com/dtm-labs/dtm@${DTM_VERSION}`;
/**
 * Stamps the version into the binary, so `GET /api/dtmsvr/version` names it. DTM 1.19.0 links on
 * Go 1.26 as it is: the old bytedance/sonic in its tree is never linked in (gin uses encoding/json
 * unless built with the `sonic` tag), so `-ldflags=-checklinkname=0` is not needed.
 */
export const DTM_BUILD_FLAGS = [`-ldflags=-X main.Version=${DTM_VERSION}`];

/**
 * The server's configuration for tests. DTM refuses a `RetryInterval` under 10 s and a
 * `TimeoutToFail` under `RetryInterval`, so the short timings go on each global transaction
 * instead (`DTM_TRANS_OPTIONS`); the server's part is to look for due transactions every second
 * (`TransCronInterval`, default 3 s) and to bound gRPC branch calls (`RequestTimeout`, default 3 s).
 */
export const DTM_SERVER_CONFIG = {
  TransCronInterval: 1,
  RetryInterval: 10,
  TimeoutToFail: 10,
  RequestTimeout: 2,
  UpdateBranchSync: 1,
  LogLevel: 'warn',
} as const;

/**
 * The options each test transaction carries (DTM's `TransOptions`): retried 1 s after an ONGOING
 * answer or an error (doubling after each error: 1, 2, 4 s…; default 10 s), and an HTTP branch
 * call times out after 3 s (when a transaction names none, DTM 1.19 sets no timeout at all on its
 * HTTP branch calls; gRPC ones get the server's `RequestTimeout`). A test sets `timeout_to_fail`
 * where it wants one: seconds until a TCC or message not submitted fails or is checked back
 * (server default 35 s), or a saga not finished compensates (default: never).
 */
export const DTM_TRANS_OPTIONS = { retry_interval: 1, request_timeout: 3 } as const;

export interface DtmServer {
  /** `http://127.0.0.1:<port>/api/dtmsvr`, the base of DTM's HTTP API (what DTM's clients call "the dtm server"). */
  readonly httpApi: string;
  /** `127.0.0.1:<port>`, DTM's gRPC API. */
  readonly grpcAddress: string;
  /** The server's process id (for its CPU time), or undefined for a server named by `TXBARRIER_DTM_URL`. */
  readonly pid: number | undefined;
  /** The last lines the server logged, for a failure message. */
  log(): string;
  /** Stops the server and deletes its data (a no-op for a server named by `TXBARRIER_DTM_URL`). */
  stop(): Promise<void>;
}

/** The `dtm` binary: `TXBARRIER_DTM_BIN`, else the pinned release built once per machine (minutes, cold). */
export function dtmBinary(): Promise<string> {
  const given = process.env.TXBARRIER_DTM_BIN;
  return given ? Promise.resolve(given) : goBinary('dtm', DTM_MODULE, DTM_BUILD_FLAGS);
}

/** The suite's Go service (servers/go/dtm-transfer): DTM's Go client as a branch service and as an initiator. */
export function dtmTransferBinary(): Promise<string> {
  return goBinary('dtm-transfer', './servers/go/dtm-transfer');
}

/**
 * Starts a server on free ports with fresh data and resolves once both its APIs answer. `settings`
 * replace the test configuration (`DTM_SERVER_CONFIG`), e.g. DTM's defaults for a benchmark.
 */
export async function startDtm(settings: Record<string, unknown> = DTM_SERVER_CONFIG): Promise<DtmServer> {
  const given = process.env.TXBARRIER_DTM_URL;
  if (given) {
    const grpcAddress = process.env.TXBARRIER_DTM_GRPC ?? `${new URL(given).hostname}:36790`;
    return { httpApi: `${given.replace(/\/$/, '')}/api/dtmsvr`, grpcAddress, pid: undefined, log: () => '', stop: async () => undefined };
  }
  const binary = await dtmBinary();
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-dtm-'));
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const config = { ...settings, HttpPort: httpPort, GrpcPort: grpcPort, Store: { Driver: 'boltdb' } };
  // YAML is a superset of JSON. DTM reads its environment before the file, so the file decides.
  writeFileSync(join(dir, 'dtm.yml'), JSON.stringify(config));
  // The store is ./dtm.bolt, hence the cwd. A clean environment: DTM reads STORE_*, HTTP_PORT, … too.
  const child = spawnGuarded(binary, ['-c', join(dir, 'dtm.yml')], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir } });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-8000)));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-8000)));
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => ((gone = true), resolve())));
  const server: DtmServer = {
    httpApi: `http://127.0.0.1:${httpPort}/api/dtmsvr`,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    pid: undefined,
    log: () => log,
    async stop() {
      child.stdin!.end();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gone) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the DTM server exited at start:\n${log}`);
    }
    try {
      const version = await fetch(`${server.httpApi}/version`, { signal: AbortSignal.timeout(1000) });
      if (version.ok && (await reachable(grpcPort))) return { ...server, pid: guardedPid(child) };
    } catch (error) {
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`the DTM server did not answer on port ${httpPort} within 30 s:\n${log}`, { cause: error });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

// `npm run dtm`: a server for trying things by hand; `npm run dtm -- --build` only builds it (CI's own step).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--build')) {
    console.log(await dtmBinary());
  } else {
    const server = await startDtm();
    console.log(`DTM ${DTM_VERSION}\n  HTTP API: ${server.httpApi}\n  gRPC:     ${server.grpcAddress}`);
    console.log(`  config:   ${JSON.stringify(DTM_SERVER_CONFIG)}\nCtrl-C stops it and deletes its data.`);
    const stop = () => void server.stop().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
}
