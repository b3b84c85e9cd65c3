/**
 * `txbarrier/redis`'s `adjust` against the same work written by hand: one hand-written Lua script
 * (DTM's `RedisCheckAdjustAmount`, barrier check first) sent with `EVALSHA`, and a bare `INCRBY` with
 * no barrier at all. `sdk (A/A)` runs the SDK's code again in a process of its own: the control.
 * Every variant runs in a process of its own, the variants take turns round after round, each op is
 * a new branch (a new gid), 16 in flight, on ioredis, against a private redis-server (AOF,
 * `appendfsync everysec`), so nobody else's keys or load share the server.
 *
 *   npx tsx bench/redis.ts [--rounds 5] [--seconds 3] [--clients 16] [--warmup 10000]
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ioredisBarrier } from '../adapters/stores/redis/index.js';
import { Barrier } from '../src/index.js';
import { startPrivateRedis } from '../servers/redis.js';

const VARIANTS = ['bare INCRBY', 'hand script', 'sdk adjust', 'sdk (A/A)'] as const;
type Variant = (typeof VARIANTS)[number];

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '10000' },
    variant: { type: 'string' },
    port: { type: 'string' },
  },
});

// DTM's script with the barrier check moved first (as txbarrier decides), for a forward op only.
const HAND = `if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) == false then return 'DUPLICATE' end
return redis.call('INCRBY', KEYS[1], ARGV[1])`;

/** One variant: a warm-up, then `seconds` of ops with `clients` in flight; prints ops/s and client CPU per op (µs). */
async function child(variant: Variant, port: number): Promise<void> {
  const redis = new Redis({ port, host: '127.0.0.1' });
  const barrier = ioredisBarrier(redis);
  const key = 'bench:balance';
  await redis.set(key, '0');
  const sha = (await redis.script('LOAD', HAND)) as string;
  const op: Record<Variant, () => Promise<unknown>> = {
    'bare INCRBY': () => redis.incrby(key, 1),
    'hand script': () => redis.evalsha(sha, 2, key, `${randomUUID()}-01-action-01`, 1, 'action', 604_800),
    'sdk adjust': () => barrier.adjust(Barrier.from({ transType: 'saga', gid: randomUUID(), branchId: '01', op: 'action' }), key, 1),
    'sdk (A/A)': () => barrier.adjust(Barrier.from({ transType: 'saga', gid: randomUUID(), branchId: '01', op: 'action' }), key, 1),
  };
  const clients = Number(values.clients);
  const run = async (until: () => boolean) => {
    let done = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (!until()) {
          await op[variant]();
          done++;
        }
      }),
    );
    return done;
  };
  let warm = 0;
  await run(() => warm++ >= Number(values.warmup));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + Number(values.seconds) * 1000;
  const done = await run(() => performance.now() >= end);
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ rate: done / elapsed, cpuUs: (used.user + used.system) / done }));
  await redis.quit();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const server = await startPrivateRedis(['--appendfsync', 'everysec']);
  const results = new Map<Variant, { rate: number; cpuUs: number }[]>(VARIANTS.map((v) => [v, []]));
  const load = [loadavg()[0]!];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      // A rotating order, so no variant always runs first after the previous one's teardown.
      for (let i = 0; i < VARIANTS.length; i++) {
        const variant = VARIANTS[(i + round) % VARIANTS.length]!;
        const out = execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, '--variant', variant, '--port', String(server.port), ...argsOf()], { encoding: 'utf8' });
        results.get(variant)!.push(JSON.parse(out.trim().split('\n').at(-1)!) as { rate: number; cpuUs: number });
      }
      load.push(loadavg()[0]!);
    }
  } finally {
    await server.stop();
  }
  const hand = results.get('hand script')!;
  console.log(`load average (1 min) during the run: ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)} on 2 cores`);
  console.log('| variant | ops/s (median) | each round | vs hand script (median of per-round ratios) | client CPU per op (median) |');
  console.log('|---|---|---|---|---|');
  for (const [variant, rows] of results) {
    const ratios = rows.map((row, i) => row.rate / hand[i]!.rate);
    console.log(
      `| ${variant} | ${Math.round(median(rows.map((r) => r.rate)))} | ${rows.map((r) => Math.round(r.rate)).join(', ')} | ${median(ratios).toFixed(2)} | ${Math.round(median(rows.map((r) => r.cpuUs)))} µs |`,
    );
  }
}

function argsOf(): string[] {
  return ['--seconds', values.seconds!, '--clients', values.clients!, '--warmup', values.warmup!];
}

if (values.variant) await child(values.variant as Variant, Number(values.port));
else await main();
