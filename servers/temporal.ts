/**
 * Temporal's dev server (`temporal server start-dev`, SQLite-backed, no UI) for the Temporal suites.
 * The CLI is built from its Go module at a pinned release (see `TEMPORAL_CLI`); set
 * `TXBARRIER_TEMPORAL_BIN` to use a `temporal` binary you already have.
 *
 * The server runs under a shell that kills it when our stdin pipe closes, so it stops with the
 * process that started it even when that process is killed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { freePort, goBinary, spawnGuarded } from './index.js';

/**
 * v1.9.1 is the newest release on the module proxy, but its go.mod replaces a nested module
 * (`github.com/temporalio/cli/cliext => ./cliext`) that neither its module zip nor the proxy
 * holds, so it cannot be built from the proxy. v1.5.1 is the newest that builds (server v1.29.1).
 */
export const TEMPORAL_CLI = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

export interface TemporalServer {
  /** `127.0.0.1:<port>`, the frontend's gRPC address. */
  readonly address: string;
  readonly namespace: string;
  /** Stops the server and deletes its database. */
  stop(): Promise<void>;
}

/** The `temporal` binary: `TXBARRIER_TEMPORAL_BIN`, else the pinned CLI built once per machine. */
export function temporalBinary(): Promise<string> {
  return process.env.TXBARRIER_TEMPORAL_BIN ? Promise.resolve(process.env.TXBARRIER_TEMPORAL_BIN) : goBinary('temporal', TEMPORAL_CLI);
}

/** Starts a dev server on free ports with a fresh database and resolves once it answers. */
export async function startTemporal(): Promise<TemporalServer> {
  const binary = await temporalBinary();
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-temporal-'));
  const [port, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const namespace = 'default';
  const args = [
    'server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--http-port', String(httpPort),
    '--metrics-port', String(metricsPort), '--db-filename', join(dir, 'temporal.db'), '--namespace', namespace,
    '--log-level', 'error',
  ];
  const child = spawnGuarded(binary, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${port}`;
  const stop = async () => {
    child.stdin!.end();
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (gone) throw new Error(`temporal server start-dev exited:\n${log}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return { address, namespace, stop };
      } finally {
        await connection.close();
      }
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal server start-dev did not answer on ${address} within 60 s:\n${log}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
