/**
 * A server process a test can SIGKILL and start again, that never outlives the process that started
 * it: it runs under a shell that kills it when our stdin pipe closes, which happens when we exit,
 * however we exit. Used by the broker clusters (servers/rabbitmq-cluster.ts, servers/nats-cluster.ts).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { createInterface } from 'node:readline';

/** One node of a cluster started here (servers/rabbitmq-cluster.ts, servers/nats-cluster.ts). */
export interface ClusterMember {
  /** The name the cluster reports it by (a queue's or stream's leader). */
  readonly name: string;
  /** Its client URL on loopback. */
  readonly url: string;
  readonly port: number;
  readonly running: boolean;
  /** SIGKILLs it and resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts it again on its data (it rejoins the cluster) and resolves once it serves clients in the cluster. */
  start(): Promise<void>;
}

export interface GuardedProcess {
  /** The server's own pid (not the guard shell's), also its process group's id. */
  readonly pid: number;
  /** Resolves when the server has exited (and the guard shell with it). */
  readonly exited: Promise<void>;
  /** Whether the server has exited. */
  readonly running: boolean;
  /** The last few kilobytes the server printed (stdout and stderr), to say why it failed. */
  output(): string;
  /** SIGKILLs the server's process group and resolves once the server is gone. */
  kill(): Promise<void>;
}

// The server runs in a process group of its own (setsid: a start script's children, such as
// RabbitMQ's Erlang VM, go with it). The shell waits on it; a watcher reads our stdin (fd 3: a
// background job's stdin is /dev/null) and SIGKILLs the group at its end. The shell exits with
// the server.
const GUARD = 'exec 3<&0; setsid "$@" 3<&- >&2 & pid=$!; echo "$pid"; (cat <&3 >/dev/null; kill -9 -- -"$pid") 2>/dev/null & watcher=$!; exec 3<&-; wait "$pid"; kill "$watcher" 2>/dev/null';

export async function startGuarded(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<GuardedProcess> {
  const shell = spawn('sh', ['-c', GUARD, 'sh', command, ...args], { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
  let printed = '';
  shell.stderr.setEncoding('utf8').on('data', (chunk: string) => (printed = (printed + chunk).slice(-8000)));
  let running = true;
  const exited = once(shell, 'exit').then(() => {
    running = false;
    // Ends the watcher's read.
    shell.stdin.end();
  });
  const [line] = (await Promise.race([once(createInterface({ input: shell.stdout }), 'line'), exited.then(() => [undefined])])) as [string | undefined];
  const pid = Number(line);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${command} did not start: ${printed.trim()}`);
  return {
    pid,
    exited,
    get running() {
      return running;
    },
    output: () => printed,
    async kill() {
      if (!running) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
      shell.stdin.end();
      await exited;
    },
  };
}

/** Whether something accepts TCP connections on the loopback port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Polls `ready` until it holds; rejects, with the end of what the process printed, at the deadline or when the process exits. */
export async function waitFor(what: string, timeoutMs: number, ready: () => Promise<boolean>, server: GuardedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    const problem = !server.running ? 'it exited' : Date.now() > deadline ? `timed out after ${timeoutMs} ms` : undefined;
    if (problem) throw new Error(`${problem} waiting for ${what}; it printed:\n${server.output().trim().split('\n').slice(-30).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
