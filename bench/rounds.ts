/**
 * Interleaved measurement: every variant runs one short round in turn, the order rotating from round
 * to round, so a slow spell of the machine (other tests, a checkpoint) hits all variants alike.
 * Ratios are taken within each round and the median of those is reported.
 */

export interface Variant {
  name: string;
  /** One operation (one transaction). Throws to abort the benchmark. */
  op: () => Promise<void>;
  /** Unmeasured work before a round of `ops` operations (e.g. committing the actions that compensations undo). */
  prepare?: (ops: number) => Promise<void>;
}

export interface RoundPlan {
  rounds: number;
  /** Target length of one variant's round; the op count is calibrated from a warm-up. */
  roundSeconds: number;
  /** Concurrent clients, each running operations back to back. */
  clients: number;
}

export interface Measured {
  /** Operations per second, one entry per round, by variant name. */
  rates: Record<string, number[]>;
}

/** Runs `ops` operations over `clients` concurrent loops; resolves to the seconds it took. */
export async function runOps(op: () => Promise<void>, clients: number, ops: number): Promise<number> {
  let started = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(clients, ops) }, async () => {
      while (started++ < ops) await op();
    }),
  );
  return (performance.now() - start) / 1000;
}

/**
 * Runs `op` over `clients` concurrent loops until `done` settles; resolves to each op's latency in
 * ms. Each op starts from a macrotask, as a request arriving over the network does, so time the
 * event loop spends blocked (a synchronous driver working through a chain of transactions) counts
 * in the latency of the ops waiting for it.
 */
export async function runUntil(op: () => Promise<void>, clients: number, done: Promise<unknown>): Promise<number[]> {
  let finished = false;
  const stop = done.finally(() => {
    finished = true;
  });
  const latencies: number[] = [];
  await Promise.all([
    stop,
    ...Array.from({ length: clients }, async () => {
      while (!finished) {
        const start = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
        await op();
        latencies.push(performance.now() - start);
      }
    }),
  ]);
  return latencies;
}

/**
 * Warms every variant up (connections opened, code compiled), then runs `rounds` rounds with the
 * variants in rotating order. Each round has the same number of operations for every variant,
 * sized from the round before so that the slowest variant takes about `roundSeconds`.
 */
export async function interleave(variants: Variant[], plan: RoundPlan): Promise<Measured> {
  let opsPerRound = Math.max(plan.clients * 4, 50);
  let slowest = Infinity;
  for (const variant of variants) {
    await variant.prepare?.(opsPerRound);
    slowest = Math.min(slowest, opsPerRound / (await runOps(variant.op, plan.clients, opsPerRound)));
  }
  const rates: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (let round = 0; round < plan.rounds; round++) {
    opsPerRound = Math.max(plan.clients, Math.round(slowest * plan.roundSeconds));
    slowest = Infinity;
    for (const variant of rotate(variants, round)) {
      await variant.prepare?.(opsPerRound);
      const rate = opsPerRound / (await runOps(variant.op, plan.clients, opsPerRound));
      rates[variant.name]!.push(rate);
      slowest = Math.min(slowest, rate);
    }
  }
  return { rates };
}

/** Round r starts at variant r and odd rounds run backwards, so no variant always follows the same one. */
export function rotate<T>(items: T[], round: number): T[] {
  const start = round % items.length;
  const rotated = [...items.slice(start), ...items.slice(0, start)];
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export interface Ratio {
  /** Median over rounds of the per-round ratio. */
  median: number;
  /** Interquartile range of the per-round ratios: how much the machine's noise moved them. */
  low: number;
  high: number;
}

/** `a`'s rate divided by `b`'s rate in the same round, over all rounds. */
export function ratio(measured: Measured, a: string, b: string): Ratio {
  const bs = measured.rates[b]!;
  return spread(measured.rates[a]!.map((rate, round) => rate / bs[round]!));
}

export function spread(values: number[]): Ratio {
  return { median: median(values), low: quantile(values, 0.25), high: quantile(values, 0.75) };
}

/** The value at quantile `q` (0..1) of unsorted samples. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
