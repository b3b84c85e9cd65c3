/**
 * Counts what one SDK `call` (a forward op through `Barrier.from(…).call(store, fn)`, the business
 * UPDATE included: bench/sdk-barrier.ts) creates on a real store: promises and timers (async_hooks
 * `init` events of type PROMISE, Timeout and Immediate) and bytes of JavaScript objects allocated; and
 * the same for the hand-written op on the same driver (bench/hand-barrier.ts, the same statements),
 * so that the difference is the SDK's own share, whatever the driver and the runtime cost.
 * test/barrier/hot-path-budget.test.ts runs it, bundled like section 1's workers, with and without
 * `@opentelemetry/api` resolvable, and holds the SDK's share to budgets.
 *
 * Run with the flags below: without the optimising compiler the bytes are what the code asks for,
 * the same on every run (TurboFan's escape analysis would remove some allocations, or not, depending
 * on when it compiled). Bytes are counted in the young generation, where objects are born (compiled
 * code and feedback vectors go elsewhere, and would count once, when a function warms); `gc()`
 * empties it before each window, and a 64 MB one holds a window without collecting.
 *
 *   node --no-opt --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 budget.mjs '<BudgetArgs as JSON>'
 *     → one line of BudgetCounts JSON
 */
import { createHook } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { otelTracer } from '../src/observe/tracing.js';
import { handOp } from './hand-barrier.js';
import { sdkOp } from './sdk-barrier.js';
import { connect, type ConnectArgs, type Op } from './worker-common.js';

export interface BudgetArgs extends ConnectArgs {
  table: string;
  /** Calls before counting: connections opened, statements prepared, the tracer's import settled. */
  warmCalls: number;
  /** Calls per counted window. */
  calls: number;
}

/** Per call. */
export interface Counts {
  promises: number;
  timers: number;
  bytes: number;
}

export interface BudgetCounts {
  sdk: Counts;
  hand: Counts;
  /** Whether the SDK found `@opentelemetry/api` (and so ran its no-op span). */
  tracing: boolean;
}

const args = JSON.parse(process.argv[2]!) as BudgetArgs;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const driver = await connect(args);

async function calls(op: Op, count: number): Promise<void> {
  const gids = Array.from({ length: count }, () => randomUUID());
  for (const gid of gids) if (await op(gid, 1 + (gid.charCodeAt(0) % 100), 1)) throw new Error('a conflict in a budget run');
}

/** Promises and timers created over `count` calls, per call. */
async function countResources(op: Op, count: number): Promise<{ promises: number; timers: number }> {
  const gids = Array.from({ length: count }, () => randomUUID());
  let promises = 0;
  let timers = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
      else if (type === 'Timeout' || type === 'Immediate') timers++;
    },
  });
  hook.enable();
  for (const gid of gids) await op(gid, 1 + (gid.charCodeAt(0) % 100), 1);
  hook.disable();
  return { promises: promises / count, timers: timers / count };
}

/** The young generation's bytes in use: where objects are born (code and feedback go elsewhere). */
function youngBytes(): number {
  return getHeapSpaceStatistics()
    .filter((space) => space.space_name === 'new_space' || space.space_name === 'new_large_object_space')
    .reduce((sum, space) => sum + space.space_used_size, 0);
}

/** Heap bytes allocated over `count` calls, per call; null when a GC ran in the window (the difference would be short). */
async function countBytes(op: Op, count: number): Promise<number | null> {
  const gids = Array.from({ length: count }, () => randomUUID());
  let collected = false;
  const observer = new PerformanceObserver(() => (collected = true));
  gc!();
  observer.observe({ entryTypes: ['gc'] });
  const before = youngBytes();
  for (const gid of gids) await op(gid, 1 + (gid.charCodeAt(0) % 100), 1);
  const after = youngBytes();
  // GC entries are delivered asynchronously: let them arrive.
  await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  return collected ? null : (after - before) / count;
}

async function count(op: Op): Promise<Counts> {
  await calls(op, args.warmCalls);
  const resources = await countResources(op, args.calls);
  // The smallest of several windows: other work (a driver's socket buffers) can only add to a window.
  const bytes: number[] = [];
  for (let attempt = 0; attempt < 8 && bytes.length < 3; attempt++) {
    const perCall = await countBytes(op, args.calls);
    if (perCall !== null) bytes.push(perCall);
  }
  if (bytes.length === 0) throw new Error('every window had a garbage collection in it; make the window smaller');
  // The loop's own last turn adds a fraction of a promise per call.
  return { promises: Math.floor(resources.promises), timers: Math.floor(resources.timers), bytes: Math.round(Math.min(...bytes)) };
}

try {
  const counts: BudgetCounts = {
    sdk: await count(sdkOp(driver, { table: args.table, op: 'action' })),
    hand: await count(handOp(driver, { table: args.table, op: 'action' })),
    tracing: Boolean(otelTracer()),
  };
  process.stdout.write(`${JSON.stringify(counts)}\n`);
} finally {
  await driver.close();
}
