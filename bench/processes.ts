/**
 * The SDK against the hand-written barrier, each variant in a process of its own: per round, the
 * parent spawns one worker per variant (in an order that rotates and reverses from round to round)
 * and takes the ratios within the round. A process that loaded only the raw driver cannot inherit
 * the SDK's process-wide costs, nor a driver warmed by the other call style.
 *
 * The workers are bundled once per run with esbuild (what tsx uses underneath, without its loader
 * and its function-name wrappers), so they start fast and run code shaped like the built package.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { ACCOUNTS, type BenchEngine, type BranchOp, type EngineName } from './engine.js';
import { median, type Ratio, spread } from './rounds.js';
import type { WorkerArgs, WorkerResult } from './worker-common.js';
import { MYSQL_URL, POSTGRES_URL } from '../servers/index.js';

export type Mechanism = 'hand' | 'sdk';
export const MECHANISMS: readonly Mechanism[] = ['hand', 'sdk'];
export const OPS: readonly BranchOp[] = ['action', 'compensate'];
export type VariantName = `${Mechanism} ${BranchOp}`;
export const VARIANTS: readonly VariantName[] = MECHANISMS.flatMap((m) => OPS.map((op) => `${m} ${op}` as const));

export interface ProcessPlan {
  rounds: number;
  /** Target length of the slowest variant's measured ops in one round. */
  roundSeconds: number;
  clients: number[];
  /** Unmeasured ops at the start of each process, at least. */
  warmOps: number;
  /** Ops per round without a calibration round (smoke runs); otherwise sized from the round before. */
  fixedOps?: number;
}

export interface ProcessCostResult {
  clients: number;
  /** One worker result per round, by variant. */
  rounds: Record<VariantName, WorkerResult[]>;
}

/** Bundled workers, ready to spawn; `dispose` removes them. */
export interface Workers {
  script: Record<Mechanism, string>;
  /** The fronts benchmark's server (bench/front-server.ts). */
  front: string;
  /** Section 6's measurement (bench/overhead-worker.ts). */
  overhead: string;
  dispose(): void;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export async function bundleWorkers(): Promise<Workers> {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-workers-'));
  // The bundles import the drivers by name: give their directory the project's node_modules.
  symlinkSync(realpathSync(here('../node_modules')), join(dir, 'node_modules'), 'dir');
  await build({
    entryPoints: { hand: here('./worker-hand.ts'), sdk: here('./worker-sdk.ts'), front: here('./front-server.ts'), overhead: here('./overhead-worker.ts') },
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
  return { script: { hand: join(dir, 'hand.mjs'), sdk: join(dir, 'sdk.mjs') }, front: join(dir, 'front.mjs'), overhead: join(dir, 'overhead.mjs'), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

function runWorker(script: string, args: WorkerArgs): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (err += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1);
      if (code === 0 && line) resolve(JSON.parse(line) as WorkerResult);
      else reject(new Error(`${script} ${args.engine} ${args.op} exited with ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

function targetOf(engine: EngineName, sqliteFile: string | undefined): string {
  if (engine === 'sqlite') {
    if (!sqliteFile) throw new Error('the process comparison needs the SQLite engine opened on a file');
    return sqliteFile;
  }
  return engine === 'mysql' ? MYSQL_URL : POSTGRES_URL;
}

/**
 * Section 1: per client count, `rounds` rounds of the four variants (hand/SDK × action/compensation),
 * each a fresh process on the same barrier table. A calibration round (discarded) sizes the rounds.
 */
export async function measureProcesses<Tx>(
  engine: BenchEngine<Tx>,
  workers: Workers,
  plan: ProcessPlan,
  sqliteFile?: string,
): Promise<ProcessCostResult[]> {
  const table = `${engine.prefix}cost`;
  const results: ProcessCostResult[] = [];
  for (const clients of plan.clients) {
    await engine.createBarrierTable(table, 'default');
    const args = (variant: VariantName, ops: number): WorkerArgs => ({
      engine: engine.name,
      op: variant.split(' ')[1] as BranchOp,
      clients,
      ops,
      // Enough calls for V8 to optimise the hot functions before the clock starts.
      warmOps: Math.max(plan.warmOps, Math.round(ops / 3)),
      table,
      accounts: `${engine.prefix}accounts`,
      accountCount: ACCOUNTS,
      target: targetOf(engine.name, sqliteFile),
    });
    const run = (variant: VariantName, ops: number) => runWorker(workers.script[variant.split(' ')[0] as Mechanism], args(variant, ops));
    let slowest = Infinity;
    if (plan.fixedOps === undefined) {
      for (const variant of VARIANTS) {
        const result = await run(variant, Math.max(clients * 20, 300));
        slowest = Math.min(slowest, result.ops / result.seconds);
      }
    }
    const rounds = Object.fromEntries(VARIANTS.map((v) => [v, [] as WorkerResult[]])) as Record<VariantName, WorkerResult[]>;
    for (let round = 0; round < plan.rounds; round++) {
      const ops = plan.fixedOps ?? Math.max(clients * 10, Math.round(slowest * plan.roundSeconds));
      slowest = Infinity;
      for (const variant of rotate(VARIANTS, round)) {
        const result = await run(variant, ops);
        rounds[variant].push(result);
        slowest = Math.min(slowest, result.ops / result.seconds);
      }
    }
    results.push({ clients, rounds });
  }
  await engine.dropTable(table);
  return results;
}

function rotate<T>(items: readonly T[], round: number): T[] {
  const start = round % items.length;
  const rotated = [...items.slice(start), ...items.slice(0, start)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

export const rateOf = (result: WorkerResult) => result.ops / result.seconds;
/** CPU of the worker process (user + system) per measured op, µs. */
export const cpuPerOp = (result: WorkerResult) => (result.userMicros + result.systemMicros) / result.ops;

/** User-mode CPU only: leaves out the kernel's socket writes and fsyncs, which a loaded machine inflates. */
export const userCpuPerOp = (result: WorkerResult) => result.userMicros / result.ops;

/** `a`'s figure over `b`'s in the same round, over all rounds. */
export function roundRatio(result: ProcessCostResult, a: VariantName, b: VariantName, figure: (r: WorkerResult) => number): Ratio {
  const bs = result.rounds[b];
  return spread(result.rounds[a].map((r, round) => figure(r) / figure(bs[round]!)));
}

export function medianOf(result: ProcessCostResult, variant: VariantName, figure: (r: WorkerResult) => number): number {
  return median(result.rounds[variant].map(figure));
}
