/**
 * postgres.js against node-postgres: the same one-UPDATE business transaction, bare and through the
 * barrier store of each driver. Every variant runs in a process of its own (no shared JIT, pools or
 * GC), and the variants take turns, round after round, so the machine's drift hits each alike.
 *
 *   npx tsx bench/postgres-js.ts [--rounds 3] [--seconds 4] [--clients 16]
 *
 * Server: TXBARRIER_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/txbarrier_test).
 */
import { execFileSync } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { postgresStore } from '../adapters/stores/postgres.js';
import { postgresJsStore } from '../adapters/stores/postgres-js.js';
import { Barrier, type BarrierStore } from '../src/index.js';
import { POSTGRES_URL } from '../servers/index.js';

const URL = POSTGRES_URL;
const ACCOUNTS = 10_000;
const VARIANTS = ['pg bare', 'pg store', 'postgres.js bare', 'postgres.js store'] as const;
type Variant = (typeof VARIANTS)[number];

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    clients: { type: 'string', default: '16' },
    variant: { type: 'string' },
    prefix: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const clients = Number(values.clients);

/** One variant for `seconds` with `clients` concurrent callers, after a short warm-up; prints transactions/s. */
async function child(variant: Variant, prefix: string): Promise<void> {
  const accounts = `${prefix}accounts`;
  const table = `${prefix}barrier`;
  const pool = new pg.Pool({ connectionString: URL, max: clients });
  const sql = postgres(URL, { max: clients, onnotice: () => {} });
  const updatePg = `UPDATE ${accounts} SET balance = balance + $1 WHERE id = $2`;
  const pgStore = postgresStore(pool, { table });
  const jsStore = postgresJsStore(sql, { table });
  const barrier = <Tx>(store: BarrierStore<Tx>, work: (tx: Tx) => Promise<unknown>) =>
    Barrier.from({ transType: 'saga', gid: randomUUID(), branchId: '01', op: 'action' }).call(store, work).then((result) => {
      if (result.outcome !== 'applied') throw new Error(`expected applied, got ${result.outcome}`);
    });
  const id = () => randomInt(1, ACCOUNTS + 1);
  const op: Record<Variant, () => Promise<unknown>> = {
    'pg bare': async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(updatePg, [1, id()]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    },
    'pg store': () => barrier(pgStore, (client) => client.query(updatePg, [1, id()])),
    'postgres.js bare': () => sql.begin((tx) => tx`UPDATE ${tx(accounts)} SET balance = balance + ${1} WHERE id = ${id()}`),
    'postgres.js store': () => barrier(jsStore, (tx) => tx`UPDATE ${tx(accounts)} SET balance = balance + ${1} WHERE id = ${id()}`),
  };
  const run = async (ms: number) => {
    const until = Date.now() + ms;
    let done = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (Date.now() < until) {
          await op[variant]();
          done++;
        }
      }),
    );
    return done;
  };
  await run(500);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const done = await run(seconds * 1000);
  const { user, system } = process.cpuUsage(cpu);
  // The client's CPU per transaction: on a loaded machine it moves far less than the rate does.
  const line = { variant, perSecond: done / ((performance.now() - started) / 1000), cpuMicros: (user + system) / done };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  await Promise.all([pool.end(), sql.end()]);
}

async function main(): Promise<void> {
  if (values.variant) return child(values.variant as Variant, values.prefix!);
  const prefix = `bench_pgjs_${randomUUID().slice(0, 8)}_`;
  const admin = new pg.Pool({ connectionString: URL, max: 1 });
  const load = loadavg().map((n) => n.toFixed(2));
  try {
    await admin.query(`CREATE TABLE ${prefix}accounts (id int PRIMARY KEY, balance bigint NOT NULL)`);
    await admin.query(`INSERT INTO ${prefix}accounts SELECT i, 0 FROM generate_series(1, $1::int) i`, [ACCOUNTS]);
    await postgresStore(admin, { table: `${prefix}barrier` }).ensureSchema();
    const figures = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    const cpu = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    for (let round = 0; round < Number(values.rounds); round++) {
      // Rotate the order each round, so no variant always runs first (or right after another).
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const variant of order) {
        const args = [...process.execArgv, process.argv[1]!, '--variant', variant, '--prefix', prefix, '--seconds', String(seconds), '--clients', String(clients)];
        const line = execFileSync(process.execPath, args, { encoding: 'utf8' }).trim().split('\n').at(-1)!;
        const { perSecond, cpuMicros } = JSON.parse(line) as { perSecond: number; cpuMicros: number };
        figures.get(variant)!.push(perSecond);
        cpu.get(variant)!.push(cpuMicros);
        process.stderr.write(`round ${round + 1}: ${variant} ${perSecond.toFixed(0)}/s, ${cpuMicros.toFixed(0)} µs CPU each\n`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const version = (await admin.query('SHOW server_version')).rows[0].server_version;
    const base = figures.get('pg store')!;
    const after = loadavg().map((n) => n.toFixed(2));
    console.log(`PostgreSQL ${version}; ${clients} clients; ${values.rounds} rounds of ${seconds} s per variant; load average before: ${load.join(', ')}; after: ${after.join(', ')}\n`);
    console.log('| variant | transactions/s (median) | each round | vs pg store (median of per-round ratios) | client CPU per transaction (median) |');
    console.log('|---|---|---|---|---|');
    for (const [variant, xs] of figures) {
      // Within a round the variants ran minutes apart at most, so their ratio drifts less than their rates.
      const ratio = median(xs.map((x, round) => x / base[round]!));
      const micros = median(cpu.get(variant)!);
      console.log(`| ${variant} | ${median(xs).toFixed(0)} | ${xs.map((x) => x.toFixed(0)).join(', ')} | ${ratio.toFixed(2)} | ${micros.toFixed(0)} µs |`);
    }
  } finally {
    await admin.query(`DROP TABLE IF EXISTS ${prefix}accounts, ${prefix}barrier`);
    await admin.end();
  }
}

await main();
