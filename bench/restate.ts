/**
 * npx tsx bench/restate.ts [--steps 5] [--invocations 200] [--rounds 5] [--concurrency 8] [--warm 300]
 * (Node >= 22: Restate's SDK needs it.)
 *
 * The cost of the barrier in a Restate handler: a handler of `--steps` `ctx.run` steps, each one
 * PostgreSQL transaction updating one account, with the barrier (`runStep`) and without it (plain
 * `ctx.run`, the same transaction), each variant a service process of its own (bench/restate-service.ts)
 * behind one Restate server (servers/restate.ts). A second barrier-less process is the A/A control:
 * two identical processes differ by that much on this machine, and a ratio means something only beyond it.
 *
 * Each process is warmed with `--warm` invocations, then every round runs `--invocations` invocations
 * per variant (`--concurrency` at a time, through the ingress), the variants' order rotating from round
 * to round. Reported: steps/s (median of rounds), the service process's CPU per step (utime + stime
 * from /proc, all threads), and the median of the per-round ratios against the barrier-less process.
 * PostgreSQL at TXBARRIER_POSTGRES_URL. Prints a markdown section.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { postgresStore } from '../adapters/stores/postgres.js';
import { ensureDatabase, freePort, POSTGRES_URL } from '../servers/index.js';
import { restateAdmin, startRestate } from '../servers/restate.js';
import type { BenchServiceArgs, StepsInput } from './restate-service.js';
import { median } from './rounds.js';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '5' },
    invocations: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
    warm: { type: 'string', default: '300' },
  },
});
const STEPS = Number(values.steps);
const INVOCATIONS = Number(values.invocations);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const WARM = Number(values.warm);
const ACCOUNTS = 64;

if (Number(process.versions.node.split('.')[0]) < 22) throw new Error(`bench/restate.ts needs Node >= 22 (Restate's SDK); this is ${process.version}`);

type VariantName = 'barrier' | 'plain' | 'plain A/A';
const VARIANTS: { name: VariantName; guarded: boolean }[] = [
  { name: 'barrier', guarded: true },
  { name: 'plain', guarded: false },
  { name: 'plain A/A', guarded: false },
];

/** CPU seconds a process has used, all threads (utime + stime of /proc/<pid>/stat). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5), counted from the state field (3): indexes 11 and 12; in clock ticks (100 Hz).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function startService(args: BenchServiceArgs): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/restate-service.ts', JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    process.stderr.write(`${args.name}: ${chunk}`);
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => /^ready$/m.test(chunk) && resolve());
    child.once('exit', (code) => reject(new Error(`${args.name} exited (${code}) before listening:\n${stderr}`)));
  });
  return child;
}

await ensureDatabase('postgres', POSTGRES_URL);
const server = await startRestate();
const admin = restateAdmin(server.admin);
const pool = new pg.Pool({ connectionString: POSTGRES_URL });
const suffix = process.pid;
const accounts = `bench_restate_accounts_${suffix}`;
const barrierTable = `bench_restate_barrier_${suffix}`;
const children: ChildProcess[] = [];
try {
  await pool.query(`CREATE TABLE ${accounts} (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)`);
  await pool.query(`INSERT INTO ${accounts} SELECT 'a' || i, 0 FROM generate_series(0, ${ACCOUNTS - 1}) AS i`);
  await postgresStore(pool, { table: barrierTable }).ensureSchema();

  const services = new Map<VariantName, { name: string; pid: number }>();
  for (const variant of VARIANTS) {
    const name = `bench_${variant.name.replace(/\W/g, '_')}`;
    const port = await freePort();
    const child = await startService({ name, port, url: POSTGRES_URL, accounts, barrierTable, guarded: variant.guarded });
    children.push(child);
    await admin.register(`http://127.0.0.1:${port}`);
    services.set(variant.name, { name, pid: child.pid! });
  }

  let seq = 0;
  /** `count` invocations of a variant, `CONCURRENCY` at a time; resolves to wall seconds and the service's CPU seconds. */
  const run = async (variant: VariantName, count: number) => {
    const { name, pid } = services.get(variant)!;
    let started = 0;
    const cpu = cpuSeconds(pid);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (started++ < count) {
          const input: StepsInput = { account: `a${seq++ % ACCOUNTS}`, n: STEPS };
          const response = await fetch(`${server.ingress}/${name}/steps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
          const body = await response.text();
          if (!response.ok || Number(body) !== STEPS) throw new Error(`${variant}: ${response.status} ${body}`);
        }
      }),
    );
    return { seconds: (performance.now() - t0) / 1000, cpu: cpuSeconds(pid) - cpu };
  };

  const loadBefore = loadavg();
  for (const variant of VARIANTS) await run(variant.name, WARM);
  const rates: Record<VariantName, number[]> = { barrier: [], plain: [], 'plain A/A': [] };
  const cpuPerStep: Record<VariantName, number[]> = { barrier: [], plain: [], 'plain A/A': [] };
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate, and reverse every other round, so no variant always follows the same one.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!.name);
    if (round % 2 === 1) order.reverse();
    for (const variant of order) {
      const { seconds, cpu } = await run(variant, INVOCATIONS);
      rates[variant].push((INVOCATIONS * STEPS) / seconds);
      cpuPerStep[variant].push((cpu / (INVOCATIONS * STEPS)) * 1e6);
    }
  }
  const loadAfter = loadavg();
  const ratio = (a: VariantName, b: VariantName) => median(rates[a].map((r, i) => r / rates[b][i]!));
  const cpuRatio = (a: VariantName, b: VariantName) => median(cpuPerStep[a].map((c, i) => c / cpuPerStep[b][i]!));
  const fmt = (n: number, digits = 0) => n.toFixed(digits);
  console.log(`\n\`npx tsx bench/restate.ts --steps ${STEPS} --invocations ${INVOCATIONS} --rounds ${ROUNDS} --concurrency ${CONCURRENCY} --warm ${WARM}\`, ${new Date().toISOString()}, Node ${process.version}, Restate server ${server.admin}.`);
  console.log(`1-minute load average ${loadBefore.map((l) => fmt(l, 2)).join(', ')} before, ${loadAfter.map((l) => fmt(l, 2)).join(', ')} after.\n`);
  console.log('| variant | steps/s (median of rounds) | per round | service CPU per step (µs, median) | steps/s vs plain (median of round ratios) | CPU per step vs plain |');
  console.log('|---|---|---|---|---|---|');
  for (const { name } of VARIANTS) {
    console.log(
      `| ${name} | ${fmt(median(rates[name]))} | ${rates[name].map((r) => fmt(r)).join(', ')} | ${fmt(median(cpuPerStep[name]))} | ${name === 'plain' ? '1' : fmt(ratio(name, 'plain'), 2)} | ${name === 'plain' ? '1' : fmt(cpuRatio(name, 'plain'), 2)} |`,
    );
  }
} finally {
  for (const child of children) {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
  await pool.query(`DROP TABLE IF EXISTS ${accounts}, ${barrierTable}`);
  await pool.end();
  await server.stop();
}
