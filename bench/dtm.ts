/**
 * npm run bench:dtm -- [--engines mysql,postgres] [--statements 2,10] [--rounds 6] [--seconds 8] [--clients 16]
 *
 * The barrier's cost behind the real coordinator, measured the way DTM publishes its own (−7.7%
 * global transactions/s with 2 SQL statements per branch, −4.5% with 10, on MySQL): the DTM server
 * (servers/dtm.ts, built once per machine; its default BoltDB store and DTM's default settings) runs a
 * two-branch saga whose branches each run `--statements` UPDATEs in one local transaction, submitted
 * with `wait_result` by `--clients` loops in this process, so a submit returns once DTM has run both
 * branches: one global transaction. The branches are served, each service in a process of its own
 * (bench/dtm-service.ts), by `barrier` (Express `barrierRoute` on the engine's store), `bare` (the same
 * route and transaction with no barrier) and `bare A/A` (the same as `bare` again: the control).
 *
 * Every (service, statements) pair is a variant; after an unmeasured round each, every round runs all
 * variants for `--seconds` each in an order that rotates and reverses from round to round. Ratios are
 * per round (barrier / bare, bare A/A / bare), reported as medians with the interquartile range. CPU
 * per global transaction is read from /proc for each service process and for DTM (the databases' CPU
 * is shared with other work and not in it). Prints a markdown section for bench/RESULTS.md.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DTM_VERSION, startDtm } from '../servers/dtm.js';
import type { EngineName } from '../servers/index.js';
import type { ServiceArgs } from './dtm-service.js';
import { median, quantile, type Ratio, rotate, runUntil, spread } from './rounds.js';

const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: 'mysql,postgres' },
    statements: { type: 'string', default: '2,10' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '8' },
    clients: { type: 'string', default: '16' },
  },
});
const engines = values.engines.split(',') as EngineName[];
const statementCounts = values.statements.split(',').map(Number);
const [rounds, seconds, clients] = [Number(values.rounds), Number(values.seconds), Number(values.clients)];
for (const engine of engines) if (engine !== 'mysql' && engine !== 'postgres') throw new Error(`--engines: mysql or postgres, not ${engine}`);
for (const n of [...statementCounts, rounds, seconds, clients]) if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive integer: ${n}`);

/** DTM's published change in global transactions/s with its barrier, by SQL statements per branch (MySQL). */
const DTM_PUBLISHED: Record<number, string> = { 2: '−7.7%', 10: '−4.5%' };
/**
 * DTM's own defaults, not the test suite's short timings, except a 1 s retry interval per saga: a
 * branch retried after a database conflict then costs its round 1 s, not DTM's 10 s.
 */
const DTM_SETTINGS = { LogLevel: 'warn' };
const SERVICES = ['bare', 'bare A/A', 'barrier'] as const;
type ServiceName = (typeof SERVICES)[number];
const TICK_MICROS = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** User + system CPU a process has used so far, µs (from /proc/<pid>/stat, in clock ticks). */
function cpuMicros(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  // The fields after the command name (which may hold spaces) start at the state, field 3.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MICROS;
}

interface Service {
  name: ServiceName;
  url: string;
  child: ChildProcess;
  stats(): Promise<{ answered: number; failed: number; barrierRows?: number }>;
  stop(): Promise<void>;
}

async function startService(name: ServiceName, engine: EngineName): Promise<Service> {
  const args: ServiceArgs = { engine, variant: name === 'barrier' ? 'barrier' : 'bare', prefix: `bench_dtm_${name.replace(/\W/g, '')}_` };
  const script = fileURLToPath(new URL('./dtm-service.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the ${name} service exited (${code}) before listening`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    child,
    stats: () =>
      new Promise((resolve) => {
        child.once('message', (message) => resolve(message as Awaited<ReturnType<Service['stats']>>));
        child.send('stats');
      }),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Sample {
  rate: number;
  /** CPU per global transaction, µs: the service process, and DTM. */
  serviceCpu: number;
  dtmCpu: number;
  latencies: number[];
  /** Submits DTM did not answer with SUCCESS in the round (a branch retried past it, or failed). */
  unfinished: number;
}

async function measureEngine(engine: EngineName, dtmApi: string, dtmPid: number | undefined) {
  const services = await Promise.all(SERVICES.map((name) => startService(name, engine)));
  try {
    const variants = statementCounts.flatMap((statements) => services.map((service) => ({ service, statements, key: `${service.name} ${statements}` })));
    const samples = new Map<string, Sample[]>(variants.map((v) => [v.key, []]));
    const run = async (variant: (typeof variants)[number], window: number): Promise<Sample> => {
      let unfinished = 0;
      const payload = JSON.stringify({ statements: variant.statements });
      const submit = async () => {
        const base = `${variant.service.url}/transfer`;
        const response = await fetch(`${dtmApi}/submit`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            gid: randomUUID(),
            trans_type: 'saga',
            wait_result: true,
            retry_interval: 1,
            steps: ['01', '02'].map((branch) => ({ action: `${base}/${branch}/action`, compensate: `${base}/${branch}/compensate` })),
            payloads: [payload, payload],
          }),
        });
        const text = await response.text();
        if (response.status !== 200 || !text.includes('SUCCESS')) unfinished++;
      };
      const [serviceBefore, dtmBefore, started] = [cpuMicros(variant.service.child.pid), cpuMicros(dtmPid), performance.now()];
      const latencies = await runUntil(submit, clients, new Promise((resolve) => setTimeout(resolve, window * 1000)));
      const elapsed = (performance.now() - started) / 1000;
      const finished = latencies.length - unfinished;
      return {
        rate: finished / elapsed,
        serviceCpu: (cpuMicros(variant.service.child.pid) - serviceBefore) / finished,
        dtmCpu: (cpuMicros(dtmPid) - dtmBefore) / finished,
        latencies,
        unfinished,
      };
    };
    for (const variant of variants) await run(variant, Math.max(3, seconds / 2));
    for (let round = 0; round < rounds; round++) {
      for (const variant of rotate(variants, round)) samples.get(variant.key)!.push(await run(variant, seconds));
      process.stderr.write(`${engine}: round ${round + 1} of ${rounds}\n`);
    }
    const stats = await Promise.all(services.map(async (service) => [service.name, await service.stats()] as const));
    return { samples, stats: new Map(stats) };
  } finally {
    await Promise.all(services.map((service) => service.stop()));
  }
}

const ratioOf = (a: Sample[], b: Sample[]): Ratio => spread(a.map((sample, round) => sample.rate / b[round]!.rate));
const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const range = (r: Ratio) => `${r.median.toFixed(3)} (${r.low.toFixed(2)}–${r.high.toFixed(2)})`;
const percent = (value: number) => `${value >= 0 ? '+' : '−'}${Math.abs(value * 100).toFixed(1)}%`;

const startedAt = new Date();
const loadBefore = loadavg();
const dtm = await startDtm(DTM_SETTINGS);
const rows: string[] = [];
const checks: string[] = [];
try {
  for (const engine of engines) {
    const { samples, stats } = await measureEngine(engine, dtm.httpApi, dtm.pid);
    for (const statements of statementCounts) {
      const [bare, control, barrier] = SERVICES.map((name) => samples.get(`${name} ${statements}`)!);
      const barrierRatio = ratioOf(barrier!, bare!);
      const aa = ratioOf(control!, bare!);
      const rate = (s: Sample[]) => fixed(median(s.map((x) => x.rate)));
      const cpu = (s: Sample[], pick: (x: Sample) => number) => fixed(median(s.map(pick)));
      const p50 = (s: Sample[]) => fixed(median(s.flatMap((x) => x.latencies)), 1);
      const p99 = (s: Sample[]) => fixed(quantile(s.flatMap((x) => x.latencies), 0.99), 1);
      const unfinished = [bare, control, barrier].map((s) => s!.reduce((sum, x) => sum + x.unfinished, 0)).join(' / ');
      rows.push(
        `| ${engine === 'mysql' ? 'MariaDB' : 'PostgreSQL'} | ${statements} | ${rate(bare!)} | ${rate(barrier!)} | ${range(barrierRatio)} | ${range(aa)} | ` +
          `${percent(barrierRatio.median - 1)} | ${percent(barrierRatio.median - aa.median)} | ${DTM_PUBLISHED[statements] ?? '—'} | ` +
          `${cpu(bare!, (x) => x.serviceCpu)} | ${cpu(barrier!, (x) => x.serviceCpu)} | ${cpu(barrier!, (x) => x.dtmCpu)} | ` +
          `${p50(bare!)} / ${p50(barrier!)} | ${p99(bare!)} / ${p99(barrier!)} | ${unfinished} |`,
      );
    }
    const barrier = stats.get('barrier')!;
    checks.push(
      `${engine}: services answered ${SERVICES.map((name) => `${name} ${stats.get(name)!.answered} (${stats.get(name)!.failed} not 200)`).join(', ')}; ` +
        `the barrier table holds ${barrier.barrierRows} rows for ${barrier.answered} branch calls answered 200`,
    );
  }
} finally {
  await dtm.stop();
}
const loadAfter = loadavg();

console.log(`## Behind the real DTM server: the transfer saga with and without the barrier (issue #26)

**Command**: \`npm run bench:dtm\` (defaults: \`--engines mysql,postgres --statements 2,10 --rounds 6 --seconds 8 --clients 16\`).
**Taken**: ${startedAt.toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}.
**Load average** (1, 5, 15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(', ')}; after: ${loadAfter.map((l) => l.toFixed(2)).join(', ')}.

DTM ${DTM_VERSION} with its default settings and store (BoltDB), ${rounds} rounds of ${seconds} s per variant, ${clients} sagas in flight.

| engine | SQL per branch | bare sagas/s | barrier sagas/s | barrier / bare | A/A (bare / bare) | change | beyond A/A | DTM's published (MySQL) | service CPU µs/saga, bare | barrier | DTM CPU µs/saga | p50 ms bare / barrier | p99 ms bare / barrier | unfinished (bare / A/A / barrier) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Checks: ${checks.join('; ')}.`);
