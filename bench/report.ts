/** The suite's results as the markdown tables of bench/RESULTS.md. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EngineName } from './engine.js';
import { type FrontsPlan, routeRatio } from './fronts.js';
import type { GrowthResult } from './growth.js';
import { median, type Measured, type Ratio, ratio } from './rounds.js';
import {
  backgroundCpuPerOp,
  cpuPerOp,
  type Mechanism,
  MECHANISMS,
  mainCpuPerOp,
  medianOf,
  OPS,
  type ProcessCostResult,
  type ProcessPlan,
  rateOf,
  roundRatio,
  type VariantName,
  VARIANTS,
} from './processes.js';
import { type EngineReport, type Section, SECTIONS, type SuiteReport } from './suite.js';
import { type Conflicts, STATEMENT_COUNTS } from './throughput.js';

const ENGINE_LABEL: Record<EngineName, string> = { sqlite: 'SQLite', mysql: 'MariaDB', postgres: 'PostgreSQL' };

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const rate = (measured: Measured, name: string) => Math.round(median(measured.rates[name]!)).toString();
export const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
/** A ratio with the interquartile range of its per-round values. */
export const shown = (r: Ratio) => `${fixed(r.median)} (${fixed(r.low)}–${fixed(r.high)})`;
const verdict = (met: boolean) => (met ? 'yes' : '**no**');
const atLeast = (r: Ratio, target: number) => `${shown(r)} ${verdict(r.median >= target)}`;

function conflictNote(conflicts: Conflicts): string {
  const entries = Object.entries(conflicts);
  return entries.length === 0 ? '' : ` (conflicts retried: ${entries.map(([name, count]) => `${name} ${count}`).join(', ')})`;
}

/**
 * A ratio against its A/A control: `excess` is (ratio median) − (A/A median), what is left of the
 * ratio once the difference between two identical processes is taken out; the target applies to it.
 */
export function againstControl(r: Ratio, control: Ratio, target: number, direction: 'at most' | 'at least'): string {
  const excess = r.median - control.median;
  const met = direction === 'at most' ? 1 + excess <= target : 1 + excess >= target;
  return `${excess >= 0 ? '+' : '−'}${fixed(Math.abs(excess))} ${verdict(met)}`;
}

/** Main-thread + background-thread µs per op. */
const threads = (result: ProcessCostResult, variant: VariantName) =>
  `${fixed(medianOf(result, variant, mainCpuPerOp), 0)} + ${fixed(medianOf(result, variant, backgroundCpuPerOp), 0)}`;

/** Issue #33's targets for section 1, beyond A/A: throughput within 3% of hand-written, CPU per op within 5%. */
const RATE_TARGET = 0.97;
const CPU_TARGET = 1.05;

function costSection(engines: EngineReport[], plan: ProcessPlan): string {
  const rates: string[][] = [];
  const cpu: string[][] = [];
  const compensation: string[][] = [];
  const warm: string[][] = [];
  for (const report of engines) {
    for (const result of report.cost ?? []) {
      const { clients } = result;
      const label = [ENGINE_LABEL[report.engine], String(clients)];
      for (const op of OPS) {
        const variant = (mechanism: Mechanism) => `${mechanism} ${op}` as const;
        const [hand, control, sdk, noOtel] = MECHANISMS.map(variant) as [VariantName, VariantName, VariantName, VariantName];
        const conflicts = [hand, control, sdk, noOtel]
          .map((v) => [v, result.rounds[v].reduce((sum, r) => sum + r.conflicts, 0)] as const)
          .filter(([, n]) => n > 0)
          .map(([v, n]) => `${v} ${n}`)
          .join(', ');
        const rateRatio = roundRatio(result, sdk, hand, rateOf);
        const rateControl = roundRatio(result, control, hand, rateOf);
        rates.push([
          label[0]!,
          op,
          label[1]!,
          fixed(medianOf(result, hand, rateOf), 0),
          fixed(medianOf(result, sdk, rateOf), 0),
          shown(rateRatio),
          shown(rateControl),
          againstControl(rateRatio, rateControl, RATE_TARGET, 'at least'),
          conflicts,
        ]);
        const cpuRatio = roundRatio(result, sdk, hand, cpuPerOp);
        const cpuControl = roundRatio(result, control, hand, cpuPerOp);
        const noOtelRatio = roundRatio(result, noOtel, hand, cpuPerOp);
        cpu.push([
          label[0]!,
          op,
          label[1]!,
          threads(result, hand),
          threads(result, sdk),
          threads(result, noOtel),
          shown(cpuRatio),
          shown(cpuControl),
          againstControl(cpuRatio, cpuControl, CPU_TARGET, 'at most'),
          shown(noOtelRatio),
          againstControl(noOtelRatio, cpuControl, CPU_TARGET, 'at most'),
        ]);
      }
      compensation.push([
        ...label,
        shown(roundRatio(result, 'sdk compensate', 'sdk action', rateOf)),
        shown(roundRatio(result, 'hand compensate', 'hand action', rateOf)),
        shown(roundRatio(result, 'hand A/A compensate', 'hand A/A action', rateOf)),
        againstControl(roundRatio(result, 'sdk compensate', 'sdk action', rateOf), roundRatio(result, 'hand A/A action', 'hand action', rateOf), 0.95, 'at least'),
      ]);
      const warmOps = VARIANTS.map((v) => result.warm[v].ops);
      const warmSeconds = VARIANTS.map((v) => result.warm[v].seconds);
      const roundOps = VARIANTS.flatMap((v) => result.rounds[v].map((r) => r.ops));
      warm.push([
        ...label,
        `${Math.min(...warmOps)}–${Math.max(...warmOps)} ops in ${fixed(Math.min(...warmSeconds), 1)}–${fixed(Math.max(...warmSeconds), 1)} s`,
        `${Math.min(...roundOps)}–${Math.max(...roundOps)}`,
      ]);
    }
  }
  if (rates.length === 0) return '';
  return `### 1. Barrier cost: SDK vs hand-written, each in its own process

Four long-lived processes per engine and client count: **hand** (the raw driver alone, txbarrier never loaded,
sending exactly the SDK's statements: bench/hand-barrier.ts), **hand A/A** (the same bundle again: the control),
**SDK** (\`Barrier.from(…).call(store, fn)\` on the adapter's store with default options, bench/sdk-barrier.ts;
\`@opentelemetry/api\` is installed, so each call runs its no-op span) and **SDK no-otel** (the same bundle with
that package unresolvable, as for users without it). Each runs both ops through client loops made once; each
(process, op) is warmed unmeasured through those same loops for ≥ ${plan.warmSeconds} s and ≥ ${plan.warmOps} ops${
    plan.warmMaxSeconds === undefined ? '' : ` (or ${plan.warmMaxSeconds} s once past ${plan.warmMinOps} ops, on a slow machine)`
  },
then ${plan.rounds} rounds of ~${plan.roundSeconds} s run every (process, op) once, in an order that rotates and
reverses from round to round. Business work: one \`UPDATE\` of a random account row; a compensation undoes an action
committed just before its round (unmeasured). CPU is the client process's, read per thread from
\`/proc/self/task/*/schedstat\` (exact nanoseconds): the JavaScript thread + all others (V8's optimising compiler and
GC helpers, libuv's pool); the database server's CPU is not in it. Ratios are medians of per-round ratios, with the
interquartile range in brackets. **A/A** is hand A/A over hand, the same code in two processes: how far this
machine moves a ratio by itself. A target is met when (ratio median) − (A/A median) is within it; that difference is
the "beyond A/A" column. (User-mode CPU alone is not shown: Linux splits a thread's time into user and system by
which mode the timer tick lands in, so at 100–500 µs per op the split is sampling noise; the per-thread sums are exact.)

Throughput (target, issue #33: SDK ≥ 0.97× hand-written beyond A/A):

${table(['engine', 'op', 'clients', 'hand tx/s', 'SDK tx/s', 'SDK / hand', 'A/A', 'beyond A/A (≥ −0.03)', 'conflicts retried'], rates)}

CPU per op, µs, main thread + background threads (target, issue #33: SDK ≤ 1.05× hand-written beyond A/A):

${table(
  ['engine', 'op', 'clients', 'hand', 'SDK', 'SDK no-otel', 'SDK / hand', 'A/A', 'SDK beyond A/A (≤ +0.05)', 'no-otel / hand', 'no-otel beyond A/A (≤ +0.05)'],
  cpu,
)}

Compensation against forward op, tx/s, same processes (target: SDK ≥ 0.95 beyond A/A, the A/A here being hand A/A
action over hand action):

${table(['engine', 'clients', 'SDK compensate / action', 'hand compensate / action', 'hand A/A compensate / action', 'SDK beyond A/A (≥ −0.05)'], compensation)}

Warm-up of each (process, op), and ops per measured round:

${table(['engine', 'clients', 'warm-up', 'ops per round'], warm)}`;
}

const SCHEMA_TARGET: Partial<Record<EngineName, number>> = { postgres: 1.1, sqlite: 1.2 };
const LAYOUT_LABEL: Record<string, string> = {
  default: 'default',
  dtm: "DTM's DDL",
  'dtm-indexed': "DTM's DDL + timestamp indexes",
  clustered: 'clustered key + create_time index',
  'key-only': 'default without its create_time index',
  brin: 'default with a BRIN create_time index instead of the B-tree',
};

function schemaSection(engines: EngineReport[]): string {
  const rows: string[][] = [];
  for (const report of engines) {
    for (const { clients, rows: tableRows, layouts, measured, conflicts } of report.schema ?? []) {
    const target = SCHEMA_TARGET[report.engine];
    for (const layout of layouts) {
      const againstDtm = ratio(measured, layout, 'dtm');
      const verdictCell =
        layout !== 'default' ? '' : target === undefined ? 'report only' : `≥ ${target}: ${verdict(againstDtm.median >= target)}`;
      rows.push([
        ENGINE_LABEL[report.engine],
        String(clients),
        tableRows === 0 ? 'empty' : sizeLabel(tableRows),
        LAYOUT_LABEL[layout]!,
        rate(measured, layout),
        layout === 'dtm' ? '1' : shown(againstDtm),
        verdictCell + (layout === 'default' ? conflictNote(conflicts) : ''),
      ]);
    }
    }
  }
  if (rows.length === 0) return '';
  return `### 2. Schema: the default table against DTM's layout (SDK forward op, transactions/s)

Default: PostgreSQL and SQLite cluster on the key (primary key, no surrogate id; SQLite \`WITHOUT ROWID\`) with a
create_time index for pruning; MariaDB's default *is* DTM's layout (clustering measured no faster on InnoDB). DTM's
DDL: surrogate \`id\` plus the unique key (its Postgres DDL has no timestamp indexes, its MySQL DDL indexes
create_time and update_time; SQLite has no DTM DDL, so its MySQL one is translated).

${table(['engine', 'clients', 'table rows', 'layout', 'tx/s', "÷ DTM's DDL", 'target (default)'], rows)}`;
}

function statementsSection(engines: EngineReport[]): string {
  const rows: string[][] = [];
  for (const report of engines) {
    if (!report.statements) continue;
    const { clients, measured, conflicts } = report.statements;
    for (const count of STATEMENT_COUNTS) {
      const r = ratio(measured, `sdk x${count}`, `bare x${count}`);
      rows.push([
        ENGINE_LABEL[report.engine],
        String(clients),
        String(count),
        rate(measured, `bare x${count}`),
        rate(measured, `sdk x${count}`),
        `${fixed((r.median - 1) * 100, 1)}% (${fixed((r.low - 1) * 100, 1)}…${fixed((r.high - 1) * 100, 1)})${conflictNote(conflicts)}`,
      ]);
    }
  }
  if (rows.length === 0) return '';
  return `### 3. Barrier against the bare transaction, 1 and 5 business statements (SDK forward op)

DTM publishes −7.7% for 2 business statements and −4.5% for 10. Each statement updates a different random account.

${table(['engine', 'clients', 'business statements', 'bare tx/s', 'SDK tx/s', 'throughput change'], rows)}`;
}

const FRONT_LABEL: Record<string, string> = { express: 'Express 5', fastify: 'Fastify 5', hono: 'Hono 4', koa: 'Koa 3' };

function frontsSection(engines: EngineReport[], plan: FrontsPlan): string {
  const rows: string[][] = [];
  for (const report of engines) {
    for (const result of report.fronts ?? []) {
      const rps = routeRatio(result, 'requestsPerSecond');
      const rpsControl = routeRatio(result, 'requestsPerSecond', 'control');
      const p99 = routeRatio(result, 'p99Ms');
      const p99Control = routeRatio(result, 'p99Ms', 'control');
      const cpu = routeRatio(result, 'cpuMicros');
      const cpuControl = routeRatio(result, 'cpuMicros', 'control');
      const figure = (server: 'sdk' | 'hand', field: 'requestsPerSecond' | 'p99Ms' | 'cpuMicros') =>
        fixed(median(result.rounds[server].map((round) => round[field])), 0);
      rows.push([
        ENGINE_LABEL[report.engine],
        FRONT_LABEL[result.front] ?? result.front,
        figure('sdk', 'requestsPerSecond'),
        figure('hand', 'requestsPerSecond'),
        shown(rps),
        shown(rpsControl),
        againstControl(rps, rpsControl, 0.95, 'at least'),
        figure('sdk', 'p99Ms'),
        figure('hand', 'p99Ms'),
        shown(p99),
        shown(p99Control),
        againstControl(p99, p99Control, 1.1, 'at most'),
        `${figure('sdk', 'cpuMicros')} / ${figure('hand', 'cpuMicros')}`,
        `${shown(cpu)}; A/A ${shown(cpuControl)}`,
      ]);
    }
  }
  if (rows.length === 0) return '';
  return `### 4. HTTP fronts: \`barrierRoute\` against the same route hand-written in that framework

autocannon on loopback (${plan.connections} connections), POST with a JSON body, every request a new saga action.
Each server runs in a process of its own: the SDK's is the front's \`barrierRoute\` as chaos/fronts.ts mounts it,
the hand-written one the same framework with a route on the raw driver sending the same statements
(bench/front-server.ts, txbarrier not loaded), and a second hand-written server is the A/A control. All answer
\`{"dtm_result":"SUCCESS","outcome":"applied","value":…}\`. Each server gets one unmeasured ${plan.warmSeconds} s round, then
${plan.rounds} rounds of ${plan.roundSeconds} s rotate among the three. Ratios are medians of per-round ratios (interquartile
range in brackets); targets apply beyond the A/A ratio, as in section 1. The CPU columns are the server process's
per request, read per thread as in section 1 (the database's and autocannon's are not in them).

${table(
  [
    'store',
    'front',
    'SDK req/s',
    'hand req/s',
    'req/s SDK / hand',
    'A/A',
    'beyond A/A (≥ −0.05)',
    'SDK p99 ms',
    'hand p99 ms',
    'p99 SDK / hand',
    'A/A',
    'beyond A/A (≤ +0.10)',
    'server CPU µs/request SDK / hand',
    'CPU SDK / hand',
  ],
  rows,
)}`;
}

const sizeLabel = (size: number) => (size === 0 ? 'empty' : size >= 1_000_000 ? `${size / 1_000_000}M` : `${size / 1000}k`);

function growthRow(engine: EngineName, growth: GrowthResult, clients: number): string[] {
  const { sizes, measured } = growth;
  const largest = sizes.at(-1)!;
  // Cost per insert relative to the empty table: the inverse of the throughput ratio.
  const cost = (size: number) => ratio(measured, '0', String(size));
  const largestCost = cost(largest);
  const target = largest >= 10_000_000 ? ` ${verdict(largestCost.median <= 1.2)}` : ' (10M not measured)';
  return [
    ENGINE_LABEL[engine],
    String(clients),
    sizes.map((size) => `${sizeLabel(size)}: ${rate(measured, String(size))}`).join('; '),
    sizes
      .filter((size) => size > 0)
      .map((size) => `${sizeLabel(size)}: ${shown(cost(size))}`)
      .join('; ') + target + conflictNote(growth.conflicts),
    growth.loadSeconds === undefined ? 'reused from an earlier run' : `${fixed(growth.loadSeconds, 1)} s`,
  ];
}

const GROWTH_HEADING = '### 5. Table size: insert cost as the table grows, and prune under load';

function growthSection(report: SuiteReport): string {
  const clients = Math.max(...report.config.throughput.clients);
  const rows = report.engines.flatMap((e) => (e.growth ? [growthRow(e.engine, e.growth, clients)] : []));
  if (rows.length === 0) return '';
  return `${GROWTH_HEADING}

Barrier-only transactions (insert + commit, no business statement) by the SDK, interleaved across tables
preloaded with rows 30 days old whose gids are spread over the key space random UUIDs fall in. Cost is time per
insert relative to the empty table (target at 10M: ≤ 1.20).

${table(['engine', 'clients', 'tx/s by table size', 'cost relative to empty', 'load time'], rows)}`;
}

/** The prune half of section 5: its heading is the growth half's, unless the growth half is absent. */
function pruneSection(report: SuiteReport, withHeading: boolean): string {
  const clients = Math.max(...report.config.throughput.clients);
  const pruneRows = report.engines.flatMap((e) => {
    const p = e.prune;
    if (!p) return [];
    return [
      [
        ENGINE_LABEL[e.engine],
        `${p.deleted} of ${p.oldRows}`,
        fixed(p.deleted / p.pruneSeconds, 0),
        `${fixed(p.pruneSeconds, 1)} s`,
        `${p.during.inserts} (${fixed(p.during.inserts / p.pruneSeconds, 0)}/s)`,
        `${fixed(p.during.p50, 1)} / ${fixed(p.during.p99, 1)} / ${fixed(p.during.max, 1)}`,
        `${fixed(p.baseline.p50, 1)} / ${fixed(p.baseline.p99, 1)} / ${fixed(p.baseline.max, 1)}`,
        verdict(p.during.max < 100) + conflictNote(p.conflicts),
      ],
    ];
  });
  if (pruneRows.length === 0) return '';
  const { pruneBaselineSeconds } = report.config;
  return `${withHeading ? `${GROWTH_HEADING}\n\n` : ''}\`store.prune({ olderThan: '7d' })\` (batches of 1000) on a table of old rows while ${clients} clients keep inserting
(SDK forward op, one business UPDATE). Baseline: the same inserts for ${pruneBaselineSeconds} s just before, no prune.

${table(['engine', 'rows pruned', 'rows/s', 'prune took', 'inserts during prune', 'insert ms p50 / p99 / max, during', 'same, baseline', 'max < 100 ms'], pruneRows)}`;
}

function overheadSection(report: SuiteReport): string {
  if (!report.overhead) return '';
  const rows = report.overhead.map((o) => [
    ENGINE_LABEL[o.engine],
    fixed(o.sdkMicros, 2),
    fixed(o.handMicros, 2),
    fixed(o.sdkMicros - o.handMicros, 2),
  ]);
  return `### 6. The SDK's own CPU per call (no I/O)

The forward op through the SDK (the real adapters) and hand-written, on drivers that answer at once: pg and
mysql2 stand-ins resolving every query as the server would for a first delivery, and a real better-sqlite3
database in memory. Bundled, in a process of its own (bench/overhead-worker.ts); median of 5 alternating rounds.
The last column is txbarrier's own work per call; compare it with section 1's CPU per op.

${table(['engine', 'SDK µs per call', 'hand-written µs per call', "the SDK's own µs per call"], rows)}`;
}

const load = (values: number[]) => values.map((v) => v.toFixed(2)).join(', ');

function header(report: SuiteReport, command: string, forcedAbove?: number): string {
  const { machine, config } = report;
  const versions = report.engines.map((e) =>
    e.skipped ? `- ${ENGINE_LABEL[e.engine]}: skipped (${e.skipped})` : `- ${e.version}`,
  );
  const forced =
    forcedAbove === undefined
      ? ''
      : `\n\n**Written under load (\`--force\`)**: the 1-minute load average was above ${forcedAbove} when the run started
(see below); other work shared the cores, so rates and CPU per op include its interference. The A/A columns show how
much.\n`;
  return `### Run${forced}

The latest write below; each section opens with when it was taken, by which command and at what load (a run with
\`--only\` replaces the sections it ran and keeps the others' earlier figures).

- Date: ${report.date}
- Command: \`${command}\`
- Machine: ${machine.cpus}, ${machine.memoryGb} GB, ${machine.os}, Node ${machine.node}
- Load average (1, 5, 15 min) before: ${load(machine.loadBefore)}; after: ${load(machine.loadAfter)}
- Rounds: section 1, ${config.processes.rounds} of ~${config.processes.roundSeconds} s per (process, op); sections 2, 3 and 5, ${config.throughput.rounds} of ~${config.throughput.roundSeconds} s per variant; clients ${config.throughput.clients.join(' and ')}; run took ${fixed(report.seconds / 60, 1)} min
${versions.join('\n')}`;
}

/** One section's figures as rendered, keyed by the section that produced them. */
export type SectionBlocks = Partial<Record<Section, string>>;

/** `*Taken …*`: when and how a section's figures were taken, and the load around it. */
function takenLine(report: SuiteReport, section: Section, command: string, forcedAbove?: number): string {
  const run = report.sections[section];
  const when = run ? run.date : report.date;
  const loads = run
    ? `load average (1, 5, 15 min) ${load(run.loadBefore)} before it, ${load(run.loadAfter)} after; it took ${fixed(run.seconds / 60, 1)} min`
    : `load average ${load(report.machine.loadBefore)} before the run, ${load(report.machine.loadAfter)} after`;
  return `*Taken ${when} by \`${command}\`${forcedAbove === undefined ? '' : ' (forced past the load limit)'}, Node ${report.machine.node}; ${loads}.*`;
}

/** The figures of each section that ran and has rows, each opening with its taken line (after its heading). */
export function renderSections(report: SuiteReport, command: string, forcedAbove?: number): SectionBlocks {
  const rendered: SectionBlocks = {
    cost: costSection(report.engines, report.config.processes),
    schema: schemaSection(report.engines),
    statements: statementsSection(report.engines),
    fronts: frontsSection(report.engines, report.config.fronts),
    growth: growthSection(report),
    prune: pruneSection(report, !report.engines.some((e) => e.growth)),
    overhead: overheadSection(report),
  };
  const blocks: SectionBlocks = {};
  for (const section of SECTIONS) {
    const text = rendered[section];
    if (!text) continue;
    const taken = takenLine(report, section, command, forcedAbove);
    const lines = text.split('\n');
    blocks[section] = lines[0]!.startsWith('###') ? [lines[0], '', taken, ...lines.slice(1)].join('\n') : `${taken}\n\n${text}`;
  }
  return blocks;
}

/** `forcedAbove`: the load limit the run was forced past (`--force`), said in the output. */
export function renderReport(report: SuiteReport, command: string, forcedAbove?: number): string {
  const blocks = renderSections(report, command, forcedAbove);
  return [header(report, command, forcedAbove), ...SECTIONS.flatMap((section) => blocks[section] ?? [])].join('\n\n');
}

const sectionBegin = (section: Section) => `<!-- bench:section ${section} -->`;
const sectionEnd = (section: Section) => `<!-- bench:section-end ${section} -->`;

/**
 * The generated block of RESULTS.md after a run: the run's header, then every section in order, the
 * ones this run rendered replacing their earlier figures, the others kept as `previous` had them
 * (each with its own taken line). `previous` is the text between the block's markers.
 */
export function mergeGenerated(previous: string, report: SuiteReport, command: string, forcedAbove?: number): string {
  const blocks = renderSections(report, command, forcedAbove);
  const parts = [header(report, command, forcedAbove)];
  for (const section of SECTIONS) {
    const fresh = blocks[section];
    if (fresh !== undefined) {
      parts.push(`${sectionBegin(section)}\n${fresh}\n${sectionEnd(section)}`);
      continue;
    }
    const begin = previous.indexOf(sectionBegin(section));
    const end = previous.indexOf(sectionEnd(section));
    if (begin >= 0 && end > begin) parts.push(previous.slice(begin, end + sectionEnd(section).length));
  }
  return parts.join('\n\n');
}

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

/**
 * Puts `markdown` (or what it makes of the block there now) between the `begin` and `end` markers of
 * bench/RESULTS.md, leaving the prose around them alone.
 */
export function writeResults(begin: string, end: string, markdown: string | ((previous: string) => string)): void {
  const current = readFileSync(RESULTS, 'utf8');
  const at = current.indexOf(begin);
  const until = current.indexOf(end);
  if (at < 0 || until < at) throw new Error(`${RESULTS} has no ${begin} … ${end} markers`);
  const block = typeof markdown === 'string' ? markdown : markdown(current.slice(at + begin.length, until));
  writeFileSync(RESULTS, `${current.slice(0, at + begin.length)}\n${block}\n${current.slice(until)}`);
  process.stderr.write(`wrote ${RESULTS}\n`);
}
