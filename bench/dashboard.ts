/**
 * `npm run bench:dashboard`: each statement the dashboard's page runs, timed on tables of 1M outbox
 * messages, 10M barrier rows and 1M idempotency keys (bench/dashboard-data.ts), per engine. A
 * snapshot runs its three sections in parallel, as the page asks; each statement is timed where
 * it runs. Two series of rounds, A then B, the same way: B/A is the A/A control (the machine's
 * drift between two identical series). Prints a Markdown table for bench/RESULTS.md.
 *
 *   npx tsx bench/dashboard.ts [--engines sqlite,postgres,mysql] [--outbox 1000000] [--barrier 10000000] [--keys 1000000]
 *     [--rounds 7] [--count-limits 10000,100000]
 *
 * Each count limit (the dashboard's `countLimit`) is measured on the same filled tables.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { storeFromUrl } from '../adapters/url.js';
import { createDashboard } from '../src/dashboard/index.js';
import { ensureIdempotencySchema, idempotencySql } from '../src/idempotency/guard.js';
import { createOutbox } from '../src/messaging/outbox/index.js';
import type { BarrierStore } from '../src/index.js';
import { type EngineName, MYSQL_URL, POSTGRES_URL } from '../servers/index.js';
import { fillDashboardTables } from './dashboard-data.js';
import { quantile } from './rounds.js';

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: 'sqlite,postgres,mysql' },
    outbox: { type: 'string', default: '1000000' },
    barrier: { type: 'string', default: '10000000' },
    keys: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '7' },
    'count-limits': { type: 'string', default: '10000,100000' },
  },
});
const sizes = { outbox: Number(values.outbox), barrier: Number(values.barrier), keys: Number(values.keys) };
const rounds = Number(values.rounds);

async function benchEngine(engine: EngineName): Promise<string[]> {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 8);
  const tables = { outbox: `dash_outbox_${suffix}`, barrier: `dash_barrier_${suffix}`, keys: `dash_keys_${suffix}` };
  const dir = engine === 'sqlite' ? mkdtempSync(join(tmpdir(), 'txbarrier-dash-')) : undefined;
  const url = engine === 'sqlite' ? `sqlite:${join(dir!, 'bench.db')}` : engine === 'mysql' ? MYSQL_URL : POSTGRES_URL;
  const { store, close } = await storeFromUrl(url, { table: tables.barrier, poolSize: 4, ...(engine === 'sqlite' ? {} : { transactionTimeout: false as const }) });
  const run = (sql: string) => store.transaction((c) => c.run(sql, []));
  try {
    await store.ensureSchema();
    await createOutbox(store, { table: tables.outbox }).ensureSchema();
    await ensureIdempotencySchema(store, { table: tables.keys });
    const filling = performance.now();
    await fillDashboardTables(engine, run, tables, sizes);
    for (const table of Object.values(tables)) await run(engine === 'mysql' ? `ANALYZE TABLE \`${table}\`` : `ANALYZE ${table}`);
    const fillSeconds = (performance.now() - filling) / 1000;

    const label = labeller(store, tables);
    const timings = new Map<string, number[]>();
    let series = 'A';
    const timed: BarrierStore<unknown> = {
      ...store,
      transaction: (work) =>
        store.transaction((c) =>
          work({
            ...c,
            select: async (sql, params) => {
              const started = performance.now();
              const rows = await c.select(sql, params);
              const key = `${series}\t${label(sql)}`;
              timings.set(key, [...(timings.get(key) ?? []), performance.now() - started]);
              return rows;
            },
          }),
        ),
    };
    const lines: string[] = [];
    for (const countLimit of values['count-limits'].split(',').map(Number)) {
      timings.clear();
      const dashboard = createDashboard(timed, { outbox: { table: tables.outbox }, idempotency: { table: tables.keys }, countLimit });
      const snapshot = async () => {
        const started = performance.now();
        const response = await dashboard.handle(new Request('http://bench/api/snapshot'), '', undefined as never);
        if (response.status !== 200) throw new Error(`snapshot: ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
        const key = `${series}\twhole snapshot (sections in parallel)`;
        timings.set(key, [...(timings.get(key) ?? []), performance.now() - started]);
      };
      await snapshot();
      timings.clear();
      const load: number[] = [];
      for (series of ['A', 'B']) {
        for (let i = 0; i < rounds; i++) {
          await snapshot();
          load.push(loadavg()[0]!);
        }
      }
      const names = [...new Set([...timings.keys()].map((key) => key.split('\t')[1]!))];
      const median = (xs: number[]) => quantile(xs, 0.5);
      for (const name of names) {
        const a = timings.get(`A\t${name}`)!;
        const b = timings.get(`B\t${name}`)!;
        lines.push(`| ${engine} | ${countLimit} | ${name} | ${median(a).toFixed(1)} | ${Math.max(...a, ...b).toFixed(1)} | ${(median(b) / median(a)).toFixed(2)} |`);
      }
      process.stderr.write(`${engine}, countLimit ${countLimit}: load average during rounds ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}\n`);
    }
    process.stderr.write(`${engine}: filled in ${fillSeconds.toFixed(0)} s\n`);
    return lines;
  } finally {
    if (engine !== 'sqlite') for (const table of Object.values(tables)) await run(`DROP TABLE IF EXISTS ${table}`);
    await close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** A short name for each statement the page runs, from the same SQL builders the dashboard uses. */
function labeller(store: BarrierStore<unknown>, tables: { outbox: string; keys: string }): (sql: string) => string {
  const outbox = createOutbox(store, { table: tables.outbox }).sql;
  const barrier = store.dialect.stats(store.table, store.placeholder);
  const keys = idempotencySql[store.dialect.name];
  const names = new Map<string, () => string>([
    [outbox.summary('pending', 6), () => 'outbox: pending summary and age histogram'],
    [outbox.summary('parked', 6), () => 'outbox: parked summary and age histogram'],
    [outbox.list('pending'), () => 'outbox: oldest pending listed'],
    [outbox.list('parked'), () => 'outbox: oldest parked listed'],
    [outbox.recentlySent(), () => 'outbox: sent recently'],
    [barrier.estimate ?? '', () => 'barrier: estimate (statistics)'],
    [barrier.countUpTo, () => 'barrier: bounded count'],
    [barrier.oldestAge, () => 'barrier: oldest row'],
    [barrier.prunable, () => 'barrier: prune dry run'],
    [barrier.recentConsumers, () => 'barrier: consumers among the newest rows'],
    [keys.expiredCount(tables.keys), () => 'keys: expired'],
    [keys.liveSummary(tables.keys), () => 'keys: live by state, stuck'],
  ]);
  return (sql) => names.get(sql)?.() ?? sql.slice(0, 60);
}

const started = new Date().toISOString();
const lines: string[] = [];
for (const engine of values.engines.split(',') as EngineName[]) lines.push(...(await benchEngine(engine)));
process.stdout.write(
  `Taken ${started}; ${rounds} rounds per series; outbox ${sizes.outbox}, barrier ${sizes.barrier}, keys ${sizes.keys} rows.\n\n` +
    '| engine | countLimit | statement | median ms (A) | max ms (A and B) | B/A (A/A control) |\n|---|---|---|---|---|---|\n' +
    `${lines.join('\n')}\n`,
);
