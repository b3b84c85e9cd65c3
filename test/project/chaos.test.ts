/**
 * The fault-injection suite: a short `npm run chaos` per engine, the schedule's determinism, the
 * checker's rules, and proof that the checker fails a handler without the barrier.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openBank, randomTransfer } from '../../chaos/bank.js';
import { FRONTS } from '../../chaos/fronts.js';
import { chaosOverHttp } from '../../chaos/run.js';
import { Barrier } from '../../src/index.js';
import {
  checkLedger,
  DEFAULT_FAULT_RATES,
  type Delivery,
  FAULT_KINDS,
  formatViolations,
  planSagas,
  runChaos,
  type SagaResult,
} from '../../src/testing/index.js';
import { hasServer } from '../support/servers.js';

/**
 * With these rates, seed 9's plan puts one crash-between, two crash-during and two
 * kill-transaction faults on the first branch's action of sagas that always send it, so every
 * kind is injected whatever the business outcomes.
 */
const SEED = 9;
const FAULTS = { 'kill-transaction': 0.03, 'crash-between': 0.004, 'crash-during': 0.004 };

describe('chaos schedule', () => {
  const plan = (seed: number) =>
    planSagas({ seed, sagas: 500, branches: 2, rates: DEFAULT_FAULT_RATES, payload: (random) => Math.floor(random() * 1000) });

  it('is the same for the same seed and differs for another', () => {
    expect(plan(42)).toEqual(plan(42));
    expect(plan(43)).not.toEqual(plan(42));
  });

  it('plans every kind at about its rate, and at most one abort per saga', () => {
    const plans = plan(42);
    for (const kind of FAULT_KINDS) {
      const count = plans.filter((p) => p.faults.some((f) => f.kind === kind)).length;
      const expected = DEFAULT_FAULT_RATES[kind] * plans.length;
      // Five standard deviations of a binomial: a broken generator fails, an honest one never does.
      expect(Math.abs(count - expected), kind).toBeLessThanOrEqual(5 * Math.sqrt(expected) + 1);
    }
    const aborts = (p: (typeof plans)[number]) =>
      p.faults.filter((f) => ['compensate-first', 'late-action', 'concurrent'].includes(f.kind)).length;
    expect(Math.max(...plans.map(aborts))).toBe(1);
  });
});

describe('checkLedger', () => {
  const saga = (gid: string, status: SagaResult['status']): SagaResult => ({
    index: 0,
    gid,
    branchIds: ['01'],
    status,
    payload: null,
    faults: [],
    events: [],
  });
  const entry = (gid: string, op: 'action' | 'compensate', seq: number) => ({ gid, branchId: '01', op, seq });
  const problemsOf = (status: SagaResult['status'], ...ops: ('action' | 'compensate')[]) =>
    checkLedger([saga('g', status)], ops.map((op, seq) => entry('g', op, seq))).map((v) => v.problem);

  it('accepts exactly-once effects and clean compensations', () => {
    expect(problemsOf('succeeded', 'action')).toEqual([]);
    expect(problemsOf('compensated')).toEqual([]);
    expect(problemsOf('compensated', 'action', 'compensate')).toEqual([]);
  });

  it('names each broken invariant', () => {
    expect(problemsOf('succeeded', 'action', 'action')).toEqual(['branch 01: action applied 2 times']);
    expect(problemsOf('compensated', 'compensate')).toEqual(['branch 01: compensation ran for an action that never committed']);
    expect(problemsOf('compensated', 'compensate', 'action')).toEqual(['branch 01: action applied after its compensation']);
    expect(problemsOf('compensated', 'action')).toEqual(['branch 01: saga compensated but its action is still applied']);
    expect(problemsOf('succeeded')).toEqual(['branch 01: saga succeeded but the action never committed']);
    expect(problemsOf('compensated', 'action', 'compensate', 'compensate')).toEqual([
      'branch 01: compensation applied 2 times',
    ]);
  });
});

describe.each(['sqlite', 'mysql', 'postgres'] as const)('chaos over HTTP with process crashes: %s', (engine) => {
  it.skipIf(engine !== 'sqlite' && !hasServer(engine))(
    'keeps every invariant through every kind of fault',
    async () => {
      const report = await chaosOverHttp({ engine, sagas: 300, seed: SEED, faults: FAULTS });
      expect(report.violations, formatViolations(report)).toEqual([]);
      // SQLite has no connection to destroy mid-transaction; the process crash stands in for it.
      for (const kind of FAULT_KINDS.filter((k) => engine !== 'sqlite' || k !== 'kill-transaction')) {
        expect(report.faults[kind], kind).toBeGreaterThan(0);
      }
      expect(report.outcomes.succeeded).toBeGreaterThan(0);
      for (const outcome of ['applied', 'duplicate', 'null-compensation', 'dangling', 'failure', 'error']) {
        expect(report.replies[outcome], outcome).toBeGreaterThan(0);
      }
    },
    60_000,
  );
});

// Express runs the full schedule above; each other front gets a short one, process crashes included.
describe.each(FRONTS.filter((front) => front !== 'express'))('chaos through %s', (front) => {
  it('keeps every invariant, and every anomaly reaches the service', async () => {
    const report = await chaosOverHttp({ engine: 'sqlite', front, sagas: 120, seed: SEED, faults: { 'crash-between': 0.02, 'crash-during': 0.01 } });
    expect(report.violations, formatViolations(report)).toEqual([]);
    expect(report.faults['crash-between']).toBeGreaterThan(0);
    for (const outcome of ['applied', 'duplicate', 'null-compensation', 'dangling', 'failure']) {
      expect(report.replies[outcome], outcome).toBeGreaterThan(0);
    }
  }, 30_000);
});

describe('the checker against a handler without the barrier', () => {
  /** Function handlers on an SQLite bank: each delivery in its own transaction, guarded or not. */
  async function run(guarded: boolean) {
    const dir = mkdtempSync(join(tmpdir(), 'txbarrier-chaos-'));
    const bank = await openBank({ engine: 'sqlite', prefix: `chaos_${randomBytes(4).toString('hex')}`, sqliteFile: join(dir, 'bank.db') });
    try {
      await bank.create();
      const handler = (delivery: Delivery) =>
        guarded
          ? Barrier.from(delivery).call(bank.store, (tx) => bank.apply(tx, delivery))
          : bank.store.transaction((connection) => bank.apply(connection.tx, delivery));
      return await runChaos({
        branches: [
          { action: handler, compensate: handler },
          { action: handler, compensate: handler },
        ],
        check: bank.check,
        seed: SEED,
        sagas: 200,
        payload: randomTransfer,
      });
    } finally {
      await bank.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('finds violations without the barrier, and none with it, under the same schedule', async () => {
    const [broken, guarded] = [await run(false), await run(true)];
    expect(guarded.violations, formatViolations(guarded)).toEqual([]);
    const problems = broken.violations.map((v) => v.problem);
    expect(problems.some((p) => /action applied \d+ times/.test(p))).toBe(true);
    expect(problems.some((p) => /compensation ran for an action that never committed/.test(p))).toBe(true);
    expect(problems.some((p) => /money not conserved/.test(p))).toBe(true);
    // What a user sees: the seed to reproduce, and the deliveries of a saga that broke.
    const text = formatViolations(broken);
    expect(text).toContain(`seed ${SEED}`);
    expect(text).toMatch(/FAULT (duplicate|compensate-first|late-action|concurrent)/);
  });
});
