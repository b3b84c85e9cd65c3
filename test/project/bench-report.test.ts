/**
 * `npm run bench -- --write --only …` replaces, inside RESULTS.md's generated block, only the sections
 * it ran: the others keep their earlier figures and their own "taken" line (bench/report.ts mergeGenerated).
 */
import { describe, expect, it } from 'vitest';
import { mergeGenerated } from '../../bench/report.js';
import { type SuiteReport, suiteConfig } from '../../bench/suite.js';

/** A run of the overhead section alone (the one whose result is easiest to write down). */
const overheadRun: SuiteReport = {
  date: '2026-12-06T09:00:00.000Z',
  machine: { cpus: '2 × test', memoryGb: 1, os: 'Linux test', node: 'v20.0.0', loadBefore: [0.5, 0.5, 0.5], loadAfter: [0.7, 0.6, 0.5] },
  config: { ...suiteConfig('smoke'), engines: ['sqlite'], sections: ['overhead'], reload: false, prefix: 'bench_' },
  engines: [{ engine: 'sqlite', version: 'SQLite test' }],
  overhead: [{ engine: 'sqlite', sdkMicros: 3, handMicros: 1 }],
  sections: { overhead: { date: '2026-12-06T09:01:00.000Z', loadBefore: [0.4, 0.5, 0.5], loadAfter: [0.9, 0.6, 0.5], seconds: 30 } },
  seconds: 31,
};

const previous = `
### Run

- Date: earlier
<!-- bench:section cost -->
### 1. Barrier cost

*Taken earlier by \`npm run bench -- --write\`.*

| the earlier cost figures |
<!-- bench:section-end cost -->

<!-- bench:section prune -->
*Taken earlier.*

| the earlier prune figures |
<!-- bench:section-end prune -->

<!-- bench:section overhead -->
### 6. The SDK's own CPU per call (no I/O)

| the earlier overhead figures |
<!-- bench:section-end overhead -->
`;

describe('bench --write', () => {
  it('replaces the sections a run measured and keeps the others, each with its own taken line, in section order', () => {
    const merged = mergeGenerated(previous, overheadRun, 'npm run bench -- --write --only overhead');
    expect(merged).toContain('| the earlier cost figures |');
    expect(merged).toContain('| the earlier prune figures |');
    expect(merged).not.toContain('the earlier overhead figures');
    expect(merged).toContain('*Taken 2026-12-06T09:01:00.000Z by `npm run bench -- --write --only overhead`, Node v20.0.0; load average (1, 5, 15 min) 0.40, 0.50, 0.50 before it, 0.90, 0.60, 0.50 after; it took 0.5 min.*');
    expect(merged).toContain('- Date: 2026-12-06T09:00:00.000Z');
    expect(merged).not.toContain('- Date: earlier');
    const order = ['<!-- bench:section cost -->', '<!-- bench:section prune -->', '<!-- bench:section overhead -->'].map((marker) => merged.indexOf(marker));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(merged.indexOf('<!-- bench:section overhead -->')).toBeLessThan(merged.indexOf('### 6.'));
  });
});
