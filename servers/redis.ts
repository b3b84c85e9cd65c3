/**
 * A private `redis-server` on a free loopback port, with its data (AOF) in a temporary folder: for
 * the tests that restart a server, flush its scripts, change its configuration or run it as a
 * cluster. The shared Redis (servers/index.ts, REDIS_URL) is never restarted or reconfigured.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './index.js';

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGTERM: Redis flushes its AOF and exits) and starts it again on the same port and folder. */
  restart(): Promise<void>;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
  /** What the server wrote to stderr (it logs to stdout, which is dropped): empty on a healthy run. */
  stderr(): string;
}

/** Why `redis-server` cannot be started here, or `undefined` when it can. */
export function redisServerProblem(): string | undefined {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return found.error ? `redis-server is not installed (${found.error.message}); apt-get install redis-server` : undefined;
}

/**
 * Starts a private server with AOF on (`appendfsync always`), so a restart keeps every
 * acknowledged write. `args` are more `--name value` settings (e.g. `['--cluster-enabled', 'yes']`).
 */
export async function startPrivateRedis(args: readonly string[] = []): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'txb-redis-'));
  const port = await freePort();
  let stderr = '';
  let child: ChildProcess;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', ...args],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
    await waitForPort(port, child);
  };
  const halt = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restart() {
      await halt();
      await start();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    stderr: () => stderr,
  };
}

/** Resolves once the port accepts a connection; rejects if the server exits first or takes over 10 s. */
async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}) before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on ${port} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
