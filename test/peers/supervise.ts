/**
 * The kill tests' process supervisor (Temporal's worker, Restate's service): keeps one child running
 * until `stop`. The child SIGKILLs itself at the points it is told (`args.kill`) and says `killed <point>`
 * first; a child that died that way is replaced at once and told only the points still due, so each
 * kill happens once. Any other exit fails the run (`failed` rejects with what the children wrote to stderr).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

export interface Supervised {
  /** The points the children died at, in order. */
  readonly killed: string[];
  /** Resolves once the first child says `ready` (it listens, or polls its queue). */
  readonly ready: Promise<void>;
  /** Rejects if a child exits other than by its own kill or a clean stop. */
  readonly failed: Promise<void>;
  /** Everything the children wrote to stderr. */
  stderr(): string;
  /** Stops the current child (SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

/** Runs `script` (a path from the repository's root) with `args` as JSON, and `kill` as its due points. */
export function supervise<Args extends { kill: string[] }>(script: string, args: Omit<Args, 'kill'>, kill: readonly string[]): Supervised {
  const killed: string[] = [];
  let stderr = '';
  let current: ChildProcess | undefined;
  let stopping = false;
  let ready!: () => void;
  const first = new Promise<void>((resolve) => (ready = resolve));
  const failed = (async () => {
    for (;;) {
      const due = { ...args, kill: kill.filter((point) => !killed.includes(point)) };
      const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(due)], { stdio: ['ignore', 'pipe', 'pipe'] });
      current = child;
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        for (const [, point] of chunk.matchAll(/^killed (.+)$/gm)) killed.push(point!);
        if (/^ready$/m.test(chunk)) ready();
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      if (signal === 'SIGKILL' && !stopping) continue;
      if (!stopping || code !== 0) throw new Error(`${script} exited (code ${code}, signal ${signal}):\n${stderr}`);
      return;
    }
  })();
  return {
    killed,
    ready: first,
    failed,
    stderr: () => stderr,
    async stop() {
      stopping = true;
      current?.kill('SIGTERM');
      await failed;
    },
  };
}
