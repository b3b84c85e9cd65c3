/**
 * A CPU profile of one section-1 worker's measured round, after the same warm-up as section 1, and
 * its heaviest functions by self time.
 *
 *   npx tsx bench/profile.ts <sqlite|mysql|postgres> <hand|sdk|sdk-no-otel> <action|compensate>
 *     [--clients 16] [--seconds 5] [--warm-seconds 3] [--warm-ops 8000] [--node-flags "--no-concurrent-recompilation"]
 *
 * Writes the `.cpuprofile` (open it in Chrome DevTools) under $TMPDIR/txbarrier-profiles and prints
 * the round's CPU per op by thread, then the top 25 functions by self time in µs per op.
 *
 * **The profile sees the JavaScript thread only.** V8 compiles optimised code and does much of its
 * GC on background threads; their CPU is the "background" figure printed first (read from
 * /proc/self/task/<tid>/schedstat), and none of it is in the profile. To see it:
 * - `--node-flags "--trace-opt --trace-deopt"` prints every optimised compile and deoptimisation (on
 *   the worker's stdout); compiles inside the measured round mean the warm-up was too short.
 * - `--node-flags "--no-concurrent-recompilation"` makes TurboFan compile on the JavaScript thread,
 *   so compiling shows in the profile (as `(program)` and V8 internals) at the cost of changing what
 *   is measured. `--single-threaded` moves GC there too.
 * - `perf stat -e instructions` is not supported on these VMs; `valgrind --tool=callgrind` is (slow).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ACCOUNTS, type BranchOp, type EngineName } from './engine.js';
import { openEngine } from './engines.js';
import { bundleWorkers, CostWorker, type Mechanism, targetOf } from './processes.js';
import type { WorkerArgs } from './worker-common.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    clients: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '5' },
    'warm-seconds': { type: 'string', default: '3' },
    'warm-ops': { type: 'string', default: '8000' },
    'node-flags': { type: 'string', default: '' },
  },
});
const [engineName, which, op] = positionals as [EngineName, string, BranchOp];
const mechanism = ({ hand: 'hand', sdk: 'sdk', 'sdk-no-otel': 'sdk no-otel' } as Record<string, Mechanism>)[which];
if (!engineName || !mechanism || (op !== 'action' && op !== 'compensate')) {
  throw new Error('usage: npx tsx bench/profile.ts <sqlite|mysql|postgres> <hand|sdk|sdk-no-otel> <action|compensate> [--clients n] [--seconds s]');
}
const prefix = 'bench_profile_';
const engine = await openEngine(engineName, { prefix });
const workers = await bundleWorkers();
const dir = join(tmpdir(), 'txbarrier-profiles');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${engineName}-${which}-${op}-${Date.now()}.cpuprofile`);
try {
  const table = `${prefix}cost`;
  await engine.createBarrierTable(table, 'default');
  const args: WorkerArgs = {
    engine: engineName,
    clients: Number(values.clients),
    table,
    accounts: `${prefix}accounts`,
    accountCount: ACCOUNTS,
    target: targetOf(engineName, engine.file),
    warmSeconds: Number(values['warm-seconds']),
    warmOps: Number(values['warm-ops']),
    roundSeconds: Number(values.seconds),
  };
  const nodeFlags = values['node-flags'].split(' ').filter(Boolean);
  const worker = new CostWorker(workers.script[mechanism], args, which, { nodeFlags, env: { ...process.env, TXBARRIER_BENCH_PROFILE: file } });
  let result;
  try {
    const warm = await worker.ask({ type: 'warm', op });
    console.log(`warm-up: ${warm.ops} ops in ${warm.seconds.toFixed(1)} s`);
    result = await worker.ask({ type: 'round', op });
  } finally {
    await worker.close();
  }
  const perOp = (micros: number) => (micros / result.ops).toFixed(1);
  console.log(
    `${engineName} ${which} ${op}, ${args.clients} clients: ${(result.ops / result.seconds).toFixed(0)} tx/s over ${result.ops} ops; ` +
      `CPU per op: ${perOp(result.mainMicros)} µs on the JavaScript thread (the profile below) + ${perOp(result.backgroundMicros)} µs on ` +
      'background threads (V8 compilers, GC helpers: not in the profile; see the notes at the top of bench/profile.ts)',
  );
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number };
  const totalHits = profile.nodes.reduce((sum, node) => sum + node.hitCount, 0);
  const microsPerHit = (profile.endTime - profile.startTime) / totalHits;
  const bySelf = new Map<string, number>();
  for (const { callFrame, hitCount } of profile.nodes) {
    const where = callFrame.url ? `${callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\//, '')}:${callFrame.lineNumber + 1}` : '';
    const name = `${callFrame.functionName || '(anonymous)'} ${where}`;
    bySelf.set(name, (bySelf.get(name) ?? 0) + hitCount);
  }
  const groups = new Map<string, number>();
  for (const { callFrame, hitCount } of profile.nodes) {
    const { url, functionName } = callFrame;
    const group = url.includes('node_modules/')
      ? url.replace(/^.*node_modules\//, '').split('/')[0]!
      : url.startsWith('node:')
        ? 'node internals'
        : url
          ? 'the worker bundle (txbarrier and the benchmark loop)'
          : functionName.startsWith('(')
            ? functionName
            : 'native (socket writes, timers, …)';
    groups.set(group, (groups.get(group) ?? 0) + hitCount);
  }
  // Sampled wall time of the JavaScript thread per op: a synchronous driver's blocking (better-sqlite3's fsync) is in it, `(idle)` is waiting.
  const line = (hits: number, name: string) =>
    `${((100 * hits) / totalHits).toFixed(1).padStart(5)}%  ${((hits * microsPerHit) / result.ops).toFixed(2).padStart(7)} µs/op  ${name}`;
  console.log(`profile of the measured round (JavaScript thread, sampled wall time, µs per op): ${file}`);
  console.log('by origin:');
  for (const [name, hits] of [...groups].sort((a, b) => b[1] - a[1])) console.log(line(hits, name));
  console.log('by function:');
  for (const [name, hits] of [...bySelf].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(line(hits, name));
} finally {
  workers.dispose();
  await engine.close();
}
