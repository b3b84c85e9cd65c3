import type { ChaosReport } from './run.js';
import { FAULT_KINDS } from './schedule.js';

/** A plain-text table, one column per run (e.g. per engine): sagas, faults, outcomes, replies, violations. */
export function formatReport(runs: Record<string, ChaosReport>): string {
  const names = Object.keys(runs);
  const reports = Object.values(runs);
  const keysOf = (pick: (r: ChaosReport) => Record<string, number>) => [...new Set(reports.flatMap((r) => Object.keys(pick(r))))].sort();
  const rows: [string, ...(string | number)[]][] = [
    ['seed', ...reports.map((r) => r.seed)],
    ['sagas', ...reports.map((r) => r.sagas.length)],
    ...FAULT_KINDS.map((kind): [string, ...number[]] => [`fault: ${kind}`, ...reports.map((r) => r.faults[kind])]),
    ...keysOf((r) => r.outcomes).map((key): [string, ...number[]] => [`saga: ${key}`, ...reports.map((r) => r.outcomes[key] ?? 0)]),
    ...keysOf((r) => r.replies).map((key): [string, ...number[]] => [`reply: ${key}`, ...reports.map((r) => r.replies[key] ?? 0)]),
    ['violations', ...reports.map((r) => r.violations.length)],
    ['seconds', ...reports.map((r) => (r.durationMs / 1000).toFixed(1))],
  ];
  const table = [['', ...names], ...rows.map((row) => row.map(String))];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table
    .map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!))).join('  '))
    .join('\n');
}

/**
 * The violations with what reproduces them: the seed, and for each saga named (up to `limit`)
 * its planned faults and event log in order.
 */
export function formatViolations(report: ChaosReport, limit = 5): string {
  if (report.violations.length === 0) return `seed ${report.seed}: no violations`;
  const lines = [`seed ${report.seed}: ${report.violations.length} violation(s)`];
  const global = report.violations.filter((v) => v.gid === undefined);
  for (const v of global) lines.push(`  ${v.problem}`);
  const byGid = new Map(report.sagas.map((s) => [s.gid, s]));
  const gids = [...new Set(report.violations.flatMap((v) => (v.gid === undefined ? [] : [v.gid])))];
  for (const gid of gids.slice(0, limit)) {
    const saga = byGid.get(gid);
    lines.push(`  saga ${gid}${saga ? ` (#${saga.index}, ${saga.status})` : ''}:`);
    for (const v of report.violations.filter((v) => v.gid === gid)) lines.push(`    ✗ ${v.problem}`);
    for (const event of saga?.events ?? []) lines.push(`      ${event}`);
  }
  if (gids.length > limit) lines.push(`  … and ${gids.length - limit} more saga(s)`);
  return lines.join('\n');
}
