import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** What the harness needs to crash a handler process: kill it without warning and have it back. */
export interface Crashable {
  /** Kills the process with SIGKILL and resolves once it serves requests again. */
  crash(): Promise<void>;
}

export interface ServiceOptions {
  /** The program, e.g. `process.execPath`. */
  command: string;
  args?: string[];
  /** Added to this process's environment; `PORT` is set by the harness. */
  env?: Record<string, string>;
  /** A line the process prints on stdout once it accepts requests (default `/ready/`). */
  ready?: RegExp;
  /** How long a start may take (default 30 s). */
  startTimeoutMs?: number;
  /**
   * Where the process's stderr goes: `'inherit'` passes it to this process's stderr; `'collect'`
   * keeps it for `Service.stderr()`, so a test that provokes errors on purpose can assert on them
   * instead of printing them. Defaults to `'inherit'`.
   */
  stderr?: 'inherit' | 'collect';
}

export interface Service extends Crashable {
  /** `http://127.0.0.1:<port>`: the same after every restart. */
  readonly url: string;
  /** Stops the process for good. */
  stop(): Promise<void>;
  /** What every run of the process wrote to stderr, when started with `stderr: 'collect'`; else empty. */
  stderr(): string;
}

/**
 * Runs a handler process as a supervisor would: on a fixed port (given as `PORT`), restarted
 * after `crash()` and after any exit it did not ask for. Its stderr goes to this process's stderr,
 * or is collected (`stderr: 'collect'`).
 */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { command, args = [], env = {}, ready = /ready/, startTimeoutMs = 30_000, stderr = 'inherit' } = options;
  let collected = '';
  const port = await freePort();
  let child: ChildProcess | undefined;
  let starting: Promise<void> | undefined;
  let stopping = false;

  const start = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const spawned = spawn(command, args, {
        env: { ...process.env, ...env, PORT: String(port) },
        stdio: ['ignore', 'pipe', stderr === 'collect' ? 'pipe' : 'inherit'],
      });
      child = spawned;
      spawned.stderr?.setEncoding('utf8').on('data', (chunk: string) => (collected += chunk));
      let output = '';
      let serving = false;
      const timer = setTimeout(() => {
        spawned.kill('SIGKILL');
        reject(new Error(`service did not print ${ready} within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (!ready.test(output)) return;
        serving = true;
        clearTimeout(timer);
        spawned.stdout!.off('data', onData);
        // Keep draining stdout, so a chatty service never blocks on a full pipe.
        spawned.stdout!.resume();
        resolve();
      };
      spawned.stdout!.on('data', onData);
      spawned.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      spawned.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!serving) reject(new Error(`service exited (${signal ?? code}) before it printed ${ready}`));
        // An exit nobody asked for: restart, as a supervisor would.
        // A failed restart shows as refused requests, and the next crash() tries again.
        else if (child === spawned && !stopping && !starting) void restart().catch(() => {});
      });
    });

  const kill = async () => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGKILL');
    await exited;
  };

  const restart = (): Promise<void> => {
    // Crashes asked for by several sagas at once are one crash.
    starting ??= (async () => {
      try {
        await kill();
        await start();
      } finally {
        starting = undefined;
      }
    })();
    return starting;
  };

  await start();
  return {
    url: `http://127.0.0.1:${port}`,
    crash: restart,
    stderr: () => collected,
    async stop() {
      stopping = true;
      await starting?.catch(() => {});
      await kill();
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
