/** The suite's results as the markdown tables of bench/RESULTS.md. */
import type { EngineName } from './engine.js';
import { routeRatio } from './fronts.js';
import type { GrowthResult } from './growth.js';
import { median, type Measured, type Ratio, ratio } from './rounds.js';
import { cpuPerOp, medianOf, OPS, rateOf, roundRatio, userCpuPerOp, VARIANTS } from './processes.js';
import type { EngineReport, SuiteReport } from './suite.js';
import { type Conflicts, STATEMENT_COUNTS } from './throughput.js';

const ENGINE_LABEL: Record<EngineName, string> = { sqlite: 'SQLite', mysql: 'MariaDB', postgres: 'PostgreSQL' };

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const rate = (measured: Measured, name: string) => Math.round(median(measured.rates[name]!)).toString();
const fixed = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
/** A ratio with the interquartile range of its per-round values. */
const shown = (r: Ratio) => `${fixed(r.median)} (${fixed(r.low)}–${fixed(r.high)})`;
const verdict = (met: boolean) => (met ? 'yes' : '**no**');
const atLeast = (r: Ratio, target: number) => `${shown(r)} ${verdict(r.median >= target)}`;

function conflictNote(conflicts: Conflicts): string {
  const entries = Object.entries(conflicts);
  return entries.length === 0 ? '' : ` (conflicts retried: ${entries.map(([name, count]) => `${name} ${count}`).join(', ')})`;
}

function costSection(engines: EngineReport[]): string {
  const rows: string[][] = [];
  const compensation: string[][] = [];
  for (const report of engines) {
    for (const result of report.cost ?? []) {
      const { clients } = result;
      const conflicts = VARIANTS.map((v) => [v, result.rounds[v].reduce((sum, r) => sum + r.conflicts, 0)] as const).filter(([, n]) => n > 0);
      for (const op of OPS) {
        const sdk = `sdk ${op}` as const;
        const hand = `hand ${op}` as const;
        const cpu = roundRatio(result, sdk, hand, cpuPerOp);
        rows.push([
          ENGINE_LABEL[report.engine],
          op,
          String(clients),
          fixed(medianOf(result, hand, rateOf), 0),
          fixed(medianOf(result, sdk, rateOf), 0),
          atLeast(roundRatio(result, sdk, hand, rateOf), 0.95),
          fixed(medianOf(result, hand, cpuPerOp), 0),
          fixed(medianOf(result, sdk, cpuPerOp), 0),
          `${shown(cpu)} ${verdict(cpu.median <= 1.1)}`,
          shown(roundRatio(result, sdk, hand, userCpuPerOp)),
          conflicts.length === 0 ? '' : conflicts.map(([v, n]) => `${v} ${n}`).join(', '),
        ]);
      }
      compensation.push([
        ENGINE_LABEL[report.engine],
        String(clients),
        atLeast(roundRatio(result, 'sdk compensate', 'sdk action', rateOf), 0.95),
        shown(roundRatio(result, 'hand compensate', 'hand action', rateOf)),
      ]);
    }
  }
  if (rows.length === 0) return '';
  return `### 1. Barrier cost: SDK vs hand-written, each in its own process

Each round spawns one process per variant (hand-written / SDK × forward / compensation), in an order that rotates
and reverses from round to round; each process warms up, then runs the same number of ops as the others, timed,
with \`process.cpuUsage()\` around the measured ops. Hand-written = the raw driver alone (txbarrier never loaded)
sending exactly the SDK's statements (bench/hand-barrier.ts); SDK = \`Barrier.from(…).call(store, fn)\` on the
adapter's store with default options (bench/sdk-barrier.ts). Business work: one \`UPDATE\` of a random account row.
A compensation undoes an action committed before the round (one of its two rows goes in). CPU is the client
process's (user + system) per op; the database server's is not in it, but the kernel's work for the client's
socket writes and (SQLite) its fsyncs is, which is why the user-only ratio is shown too. Ratios are medians of per-round ratios, with
the interquartile range in brackets.

${table(
  ['engine', 'op', 'clients', 'hand-written tx/s', 'SDK tx/s', 'SDK / hand tx/s (≥ 0.95)', 'hand-written CPU µs/op', 'SDK CPU µs/op', 'SDK / hand CPU (≤ 1.10)', 'SDK / hand user CPU only', 'conflicts retried'],
  rows,
)}

Compensation against forward op, same processes:

${table(['engine', 'clients', 'SDK compensate / action (≥ 0.95)', 'hand-written compensate / action'], compensation)}`;
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

function frontsSection(engines: EngineReport[]): string {
  const rows: string[][] = [];
  for (const report of engines) {
    for (const result of report.fronts ?? []) {
      const p99 = routeRatio(result, 'p99Ms');
      const figure = (route: 'sdk' | 'hand', field: 'requestsPerSecond' | 'p99Ms') =>
        fixed(median(result.rounds[route].map((round) => round[field])), 0);
      rows.push([
        ENGINE_LABEL[report.engine],
        FRONT_LABEL[result.front] ?? result.front,
        String(result.connections),
        figure('sdk', 'requestsPerSecond'),
        figure('hand', 'requestsPerSecond'),
        atLeast(routeRatio(result, 'requestsPerSecond'), 0.95),
        figure('sdk', 'p99Ms'),
        figure('hand', 'p99Ms'),
        `${shown(p99)} ${verdict(p99.median <= 1.1)}`,
      ]);
    }
  }
  if (rows.length === 0) return '';
  return `### 4. HTTP fronts: \`barrierRoute\` against the same route hand-written in that framework

autocannon on loopback, POST with a JSON body, every request a new saga action. Each server runs in a process of
its own: the SDK's is the front's \`barrierRoute\` as chaos/fronts.ts mounts it, the hand-written one the same
framework with a route on the raw driver sending the same statements (bench/front-server.ts, txbarrier not
loaded). Both answer \`{"dtm_result":"SUCCESS","outcome":"applied","value":…}\`. Rounds alternate between the two.

${table(
  ['store', 'front', 'connections', 'SDK req/s', 'hand-written req/s', 'req/s SDK / hand (≥ 0.95)', 'SDK p99 ms', 'hand-written p99 ms', 'p99 SDK / hand (≤ 1.10)'],
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

function growthSection(report: SuiteReport): string {
  const clients = Math.max(...report.config.throughput.clients);
  const rows = report.engines.flatMap((e) => (e.growth ? [growthRow(e.engine, e.growth, clients)] : []));
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
  if (rows.length === 0 && pruneRows.length === 0) return '';
  const parts = ['### 5. Table size: insert cost as the table grows, and prune under load'];
  if (rows.length > 0) {
    parts.push(`Barrier-only transactions (insert + commit, no business statement) by the SDK, interleaved across tables
preloaded with rows 30 days old whose gids are spread over the key space random UUIDs fall in. Cost is time per
insert relative to the empty table (target at 10M: ≤ 1.20).

${table(['engine', 'clients', 'tx/s by table size', 'cost relative to empty', 'load time'], rows)}`);
  }
  if (pruneRows.length > 0) {
    const { pruneBaselineSeconds } = report.config;
    parts.push(`\`store.prune({ olderThan: '7d' })\` (batches of 1000) on a table of old rows while ${clients} clients keep inserting
(SDK forward op, one business UPDATE). Baseline: the same inserts for ${pruneBaselineSeconds} s just before, no prune.

${table(['engine', 'rows pruned', 'rows/s', 'prune took', 'inserts during prune', 'insert ms p50 / p99 / max, during', 'same, baseline', 'max < 100 ms'], pruneRows)}`);
  }
  return parts.join('\n\n');
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

function header(report: SuiteReport, command: string): string {
  const { machine, config } = report;
  const versions = report.engines.map((e) =>
    e.skipped ? `- ${ENGINE_LABEL[e.engine]}: skipped (${e.skipped})` : `- ${e.version}`,
  );
  const load = (values: number[]) => values.map((v) => v.toFixed(2)).join(', ');
  return `## Results

- Date: ${report.date}
- Command: \`${command}\`
- Machine: ${machine.cpus}, ${machine.memoryGb} GB, ${machine.os}, Node ${machine.node}
- Load average (1, 5, 15 min) before: ${load(machine.loadBefore)}; after: ${load(machine.loadAfter)}
- Rounds: ${config.throughput.rounds} of ~${config.throughput.roundSeconds} s per variant, clients ${config.throughput.clients.join(' and ')}; run took ${fixed(report.seconds / 60, 1)} min
${versions.join('\n')}`;
}

export function renderReport(report: SuiteReport, command: string): string {
  return [
    header(report, command),
    costSection(report.engines),
    schemaSection(report.engines),
    statementsSection(report.engines),
    frontsSection(report.engines),
    growthSection(report),
    overheadSection(report),
  ]
    .filter((part) => part !== '')
    .join('\n\n');
}
