/**
 * The SDK against the hand-written barrier, each variant in a process of its own. The processes live
 * for the whole comparison: each warms its client loops to V8's steady state (seconds and thousands
 * of ops: the SDK's small async functions reach the optimising compiler only after 1,000–3,000 calls,
 * compiled on background threads), then runs short measured rounds through the same loops, the
 * processes taking turns in an order that rotates and reverses from round to round. A second
 * hand-written process (an A/A control) shows how far two identical processes differ on this
 * machine; a ratio means something only beyond that.
 *
 * The workers are bundled once per run with esbuild (what tsx uses underneath, without its loader
 * and its function-name wrappers), so they start fast and run code shaped like the built package.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { ACCOUNTS, type BenchEngine, type BranchOp, type EngineName } from './engine.js';
import { median, type Ratio, spread } from './rounds.js';
import type { WorkerArgs, WorkerCommand, WorkerResult } from './worker-common.js';
import { MYSQL_URL, POSTGRES_URL } from '../servers/index.js';

/**
 * The processes of section 1: `hand` and `hand A/A` run the same bundle (the A/A control), `sdk`
 * loads `@opentelemetry/api` as the tests do (a no-op span per call), `sdk no-otel` cannot find it.
 */
export type Mechanism = 'hand' | 'hand A/A' | 'sdk' | 'sdk no-otel';
export const MECHANISMS: readonly Mechanism[] = ['hand', 'hand A/A', 'sdk', 'sdk no-otel'];
export const OPS: readonly BranchOp[] = ['action', 'compensate'];
export type VariantName = `${Mechanism} ${BranchOp}`;
export const VARIANTS: readonly VariantName[] = MECHANISMS.flatMap((m) => OPS.map((op) => `${m} ${op}` as const));

export interface ProcessPlan {
  rounds: number;
  /** Length of one variant's measured round. */
  roundSeconds: number;
  clients: number[];
  /** Engines that run only the first client count (the comparison is the suite's longest section). */
  firstClientsOnly?: readonly EngineName[];
  /** Unmeasured warm-up of each variant: at least this long and this many ops… */
  warmSeconds: number;
  warmOps: number;
  /** …unless it has taken this long and is past this many ops (a loaded machine). */
  warmMaxSeconds?: number;
  warmMinOps?: number;
  /** Ops per round instead of `roundSeconds` (smoke runs). */
  fixedOps?: number;
}

export interface ProcessCostResult {
  clients: number;
  /** Each variant's warm-up, summed. */
  warm: Record<VariantName, WorkerResult>;
  /** One worker result per round, by variant. */
  rounds: Record<VariantName, WorkerResult[]>;
}

/** Bundled workers, ready to spawn; `dispose` removes them. */
export interface Workers {
  script: Record<Mechanism, string>;
  /** The fronts benchmark's server (bench/front-server.ts). */
  front: string;
  /** The idempotency benchmark's server (bench/idempotency-server.ts). */
  idempotency: string;
  /** Section 6's measurement (bench/overhead-worker.ts). */
  overhead: string;
  /** The outbox's enqueue variants (bench/outbox-worker.ts). */
  outbox: string;
  /** The per-call counts of test/barrier/hot-path-budget.test.ts (bench/budget-worker.ts), with and without OpenTelemetry. */
  budget: Record<'otel' | 'no-otel', string>;
  dispose(): void;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export async function bundleWorkers(): Promise<Workers> {
  const { dir, build: bundle, dispose } = await bundleDir();
  await bundle({
    hand: here('./worker-hand.ts'),
    sdk: here('./worker-sdk.ts'),
    front: here('./front-server.ts'),
    idempotency: here('./idempotency-server.ts'),
    overhead: here('./overhead-worker.ts'),
    outbox: here('./outbox-worker.ts'),
    budget: here('./budget-worker.ts'),
  });
  await bundle({ 'sdk-no-otel': here('./worker-sdk.ts'), 'budget-no-otel': here('./budget-worker.ts') }, [withoutOpenTelemetry]);
  const hand = join(dir, 'hand.mjs');
  return {
    script: { hand, 'hand A/A': hand, sdk: join(dir, 'sdk.mjs'), 'sdk no-otel': join(dir, 'sdk-no-otel.mjs') },
    front: join(dir, 'front.mjs'),
    idempotency: join(dir, 'idempotency.mjs'),
    overhead: join(dir, 'overhead.mjs'),
    outbox: join(dir, 'outbox.mjs'),
    budget: { otel: join(dir, 'budget.mjs'), 'no-otel': join(dir, 'budget-no-otel.mjs') },
    dispose,
  };
}

/**
 * A temporary directory that bundles worker entry points (`name: source`) into `<dir>/<name>.mjs`,
 * drivers left as imports resolved from the project's node_modules.
 */
export async function bundleDir(): Promise<{ dir: string; build(entries: Record<string, string>, plugins?: Plugin[]): Promise<void>; dispose(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-workers-'));
  // The bundles import the drivers by name: give their directory the project's node_modules.
  symlinkSync(realpathSync(here('../node_modules')), join(dir, 'node_modules'), 'dir');
  return {
    dir,
    build: async (entryPoints, plugins = []) =>
      void (await build({
        entryPoints,
        plugins,
        outdir: dir,
        outExtension: { '.js': '.mjs' },
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
        logLevel: 'error',
      })),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** `import('@opentelemetry/api')` fails as it does where the package is not installed. */
export const withoutOpenTelemetry: Plugin = {
  name: 'without-opentelemetry',
  setup(plugin) {
    plugin.onResolve({ filter: /^@opentelemetry\/api$/ }, () => ({ path: 'absent', namespace: 'without-opentelemetry' }));
    plugin.onLoad({ filter: /.*/, namespace: 'without-opentelemetry' }, () => ({
      contents: "throw Object.assign(new Error(\"Cannot find package '@opentelemetry/api'\"), { code: 'ERR_MODULE_NOT_FOUND' });",
    }));
  },
};

/** A cost worker process: one command at a time over IPC, one result (a WorkerResult unless told) back. */
export class CostWorker<Command extends { type: string } = Extract<WorkerCommand, { op: unknown }>, Result = WorkerResult> {
  private readonly child: ChildProcess;
  private readonly exited: Promise<never>;
  /** The worker's first message: connected, loops made, listening. */
  private readonly ready: Promise<unknown>;
  private stderr = '';

  constructor(script: string, args: Pick<WorkerArgs, 'engine' | 'clients'>, label: string, options: { nodeFlags?: string[]; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [...(options.nodeFlags ?? []), script, JSON.stringify(args)], {
      stdio: ['ignore', options.nodeFlags?.length ? 'inherit' : 'ignore', 'pipe', 'ipc'],
      env: options.env ?? process.env,
    });
    this.child.stderr!.on('data', (chunk) => (this.stderr += chunk));
    this.exited = new Promise<never>((_, reject) => {
      this.child.once('error', reject);
      this.child.once('exit', (code) => reject(new Error(`${label} worker (${args.engine}, ${args.clients} clients) exited with ${code}: ${this.stderr.trim()}`)));
    });
    this.exited.catch(() => undefined);
    this.ready = new Promise((resolve) => this.child.once('message', resolve));
  }

  async ask(command: Command): Promise<Result> {
    await Promise.race([this.ready, this.exited]);
    const answer = new Promise<Result>((resolve) => this.child.once('message', (message) => resolve(message as Result)));
    this.child.send(command);
    return Promise.race([answer, this.exited]);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.connected) this.child.send({ type: 'exit' } satisfies WorkerCommand);
    else this.child.kill();
    await exited;
  }
}

export function targetOf(engine: EngineName, sqliteFile: string | undefined): string {
  if (engine === 'sqlite') {
    if (!sqliteFile) throw new Error('the process comparison needs the SQLite engine opened on a file');
    return sqliteFile;
  }
  return engine === 'mysql' ? MYSQL_URL : POSTGRES_URL;
}

/**
 * Section 1: per client count, the four processes (hand, hand A/A, sdk, sdk no-otel) on one barrier
 * table, each running both ops; every variant (process × op) is warmed, then `rounds` rounds run
 * every variant once, in rotating order.
 */
export async function measureProcesses<Tx>(
  engine: BenchEngine<Tx>,
  workers: Workers,
  plan: ProcessPlan,
  sqliteFile?: string,
  progress: (line: string) => void = () => {},
): Promise<ProcessCostResult[]> {
  const table = `${engine.prefix}cost`;
  const results: ProcessCostResult[] = [];
  const clientCounts = plan.firstClientsOnly?.includes(engine.name) ? plan.clients.slice(0, 1) : plan.clients;
  for (const clients of clientCounts) {
    await engine.createBarrierTable(table, 'default');
    const args: WorkerArgs = {
      engine: engine.name,
      clients,
      table,
      accounts: `${engine.prefix}accounts`,
      accountCount: ACCOUNTS,
      target: targetOf(engine.name, sqliteFile),
      warmSeconds: plan.warmSeconds,
      warmOps: plan.warmOps,
      ...(plan.warmMaxSeconds === undefined ? {} : { warmMaxSeconds: plan.warmMaxSeconds, warmMinOps: plan.warmMinOps ?? 0 }),
      roundSeconds: plan.roundSeconds,
      ...(plan.fixedOps === undefined ? {} : { fixedOps: plan.fixedOps }),
    };
    const processes = Object.fromEntries(MECHANISMS.map((m) => [m, new CostWorker(workers.script[m], args, m)])) as Record<Mechanism, CostWorker>;
    try {
      const ask = (type: 'warm' | 'round', variant: VariantName) => {
        const [mechanism, op] = split(variant);
        return processes[mechanism].ask({ type, op });
      };
      const warm = {} as Record<VariantName, WorkerResult>;
      for (const variant of VARIANTS) warm[variant] = await ask('warm', variant);
      const rounds = Object.fromEntries(VARIANTS.map((v) => [v, [] as WorkerResult[]])) as Record<VariantName, WorkerResult[]>;
      for (let round = 0; round < plan.rounds; round++) {
        for (const variant of rotate(VARIANTS, round)) rounds[variant].push(await ask('round', variant));
        progress(`${engine.name}: cost, ${clients} clients, round ${round + 1} of ${plan.rounds}`);
      }
      results.push({ clients, warm, rounds });
    } finally {
      await Promise.all(Object.values(processes).map((worker) => worker.close()));
    }
  }
  await engine.dropTable(table);
  return results;
}

const split = (variant: VariantName) => {
  const at = variant.lastIndexOf(' ');
  return [variant.slice(0, at) as Mechanism, variant.slice(at + 1) as BranchOp] as const;
};

function rotate<T>(items: readonly T[], round: number): T[] {
  const start = round % items.length;
  const rotated = [...items.slice(start), ...items.slice(0, start)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

export const rateOf = (result: WorkerResult) => result.ops / result.seconds;
/** CPU of the whole worker process per measured op, µs. */
export const cpuPerOp = (result: WorkerResult) => (result.mainMicros + result.backgroundMicros) / result.ops;
/** The JavaScript thread's CPU per op: what a CPU profile sees. */
export const mainCpuPerOp = (result: WorkerResult) => result.mainMicros / result.ops;
/** Every other thread's (V8's compilers and GC helpers above all) per op. */
export const backgroundCpuPerOp = (result: WorkerResult) => result.backgroundMicros / result.ops;

/** `a`'s figure over `b`'s in the same round, over all rounds. */
export function roundRatio(result: ProcessCostResult, a: VariantName, b: VariantName, figure: (r: WorkerResult) => number): Ratio {
  const bs = result.rounds[b];
  return spread(result.rounds[a].map((r, round) => figure(r) / figure(bs[round]!)));
}

export function medianOf(result: ProcessCostResult, variant: VariantName, figure: (r: WorkerResult) => number): number {
  return median(result.rounds[variant].map(figure));
}
