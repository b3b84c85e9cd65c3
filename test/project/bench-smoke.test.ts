/**
 * The benchmark code runs: one short round of every variant of every section, so `npm run bench`
 * cannot rot between the runs that produce bench/RESULTS.md. No figure is checked, only that each
 * variant did its work. Tables get a prefix of their own, so concurrent test runs cannot collide.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { EngineName } from '../../bench/engine.js';
import { openEngine } from '../../bench/engines.js';
import { actionPath, frontArgs, startFront, startServer, stopFront } from '../../bench/fronts.js';
import { ensureIdempotencySchema } from '../../src/idempotency/guard.js';
import { bundleWorkers, targetOf, VARIANTS } from '../../bench/processes.js';
import { FRONTS } from '../../chaos/fronts.js';
import { renderReport } from '../../bench/report.js';
import { type EngineReport, runSuite, type Section, SECTIONS, suiteConfig } from '../../bench/suite.js';
import { hasServer } from '../support/servers.js';

const prefix = () => `bench_t${randomBytes(4).toString('hex')}_`;

async function smoke(engine: EngineName, sections: Section[]) {
  const config = { ...suiteConfig('smoke'), engines: [engine], sections, reload: false, prefix: prefix() };
  const report = await runSuite(config, () => {});
  return { report, engineReport: report.engines[0]!, markdown: renderReport(report, 'smoke') };
}

function expectEveryVariantMeasured(rates: Record<string, number[]>, names: string[]) {
  expect(Object.keys(rates).sort()).toEqual([...names].sort());
  for (const name of names) {
    expect(rates[name]).toHaveLength(1);
    expect(rates[name]![0]).toBeGreaterThan(0);
    expect(Number.isFinite(rates[name]![0])).toBe(true);
  }
}

function expectDatabaseSections(result: EngineReport) {
  expect(result.skipped).toBeUndefined();
  expect(result.cost?.map((c) => c.clients)).toEqual([1, 4]);
  for (const cost of result.cost!) {
    // Each variant ran in a process of its own, warmed and then measured, with the CPU of its threads.
    expect(Object.keys(cost.rounds).sort()).toEqual([...VARIANTS].sort());
    for (const variant of VARIANTS) {
      expect(cost.warm[variant]!.ops).toBeGreaterThanOrEqual(4);
      expect(cost.rounds[variant]).toHaveLength(1);
      expect(cost.rounds[variant][0]!.ops).toBe(8);
      expect(cost.rounds[variant][0]!.mainMicros).toBeGreaterThan(0);
    }
  }
  expect(result.schema?.map((s) => s.rows)).toEqual([0, 300]);
  for (const schema of result.schema!) expectEveryVariantMeasured(schema.measured.rates, [...schema.layouts]);
  expectEveryVariantMeasured(result.statements!.measured.rates, ['bare x1', 'sdk x1', 'bare x5', 'sdk x5']);
  expectEveryVariantMeasured(result.growth!.measured.rates, ['0', '300']);
  // The prune deleted every old row while the inserts (which are new) went on.
  const prune = result.prune!;
  expect(prune.deleted).toBe(prune.oldRows);
  expect(prune.during.inserts + prune.baseline.inserts).toBeGreaterThan(0);
}

const DATABASE_SECTIONS: Section[] = ['cost', 'schema', 'statements', 'growth', 'prune'];

describe('benchmarks: sqlite', () => {
  it('runs every section once and renders every table', async () => {
    const { report, engineReport, markdown } = await smoke('sqlite', [...SECTIONS]);
    expectDatabaseSections(engineReport);
    expect(engineReport.fronts?.map((f) => f.front)).toEqual(report.config.fronts.fronts);
    for (const front of engineReport.fronts!) {
      for (const server of ['sdk', 'hand', 'control'] as const) {
        expect(front.rounds[server]).toHaveLength(1);
        expect(front.rounds[server][0]!.requestsPerSecond).toBeGreaterThan(0);
      }
    }
    expect(report.overhead?.map((o) => o.engine)).toEqual(['sqlite', 'mysql', 'postgres']);
    for (const o of report.overhead!) expect(o.sdkMicros).toBeGreaterThan(0);
    for (const heading of ['### 1.', '### 2.', '### 3.', '### 4.', '### 5.', '### 6.']) expect(markdown).toContain(heading);
  });

  it('answers the same JSON from barrierRoute and from the hand-written route, on every front', async () => {
    const engine = await openEngine('sqlite', { prefix: prefix() });
    const workers = await bundleWorkers();
    const table = `${engine.prefix}json`;
    try {
      await engine.createBarrierTable(table, 'default');
      for (const front of FRONTS) {
        const servers = await Promise.all((['sdk', 'hand', 'core'] as const).map((route) => startFront(workers, frontArgs(engine, front, route, table))));
        try {
          const post = async (port: number, gid: string) => {
            const response = await fetch(`http://127.0.0.1:${port}${actionPath(gid)}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ account: 7, amount: 1 }),
            });
            return { status: response.status, type: response.headers.get('content-type')?.split(';')[0], body: await response.text() };
          };
          const [sdk, hand, core] = [await post(servers[0]!.port, randomUUID()), await post(servers[1]!.port, randomUUID()), await post(servers[2]!.port, randomUUID())];
          expect(sdk, front).toEqual({ status: 200, type: 'application/json', body: '{"dtm_result":"SUCCESS","outcome":"applied","value":{"account":7}}' });
          expect(hand, front).toEqual(sdk);
          expect(core, front).toEqual(sdk);
        } finally {
          await Promise.all(servers.map(({ child }) => stopFront(child)));
        }
      }
    } finally {
      workers.dispose();
      await engine.close();
    }
  });
});

describe('benchmarks: idempotency keys', () => {
  it('answers and stores the same from idempotentRoute and from the key row written by hand', async () => {
    const engine = await openEngine('sqlite', { prefix: prefix() });
    const workers = await bundleWorkers();
    const table = `${engine.prefix}keys`;
    try {
      await ensureIdempotencySchema(engine.store(`${engine.prefix}barrier`), { table });
      const args = (route: 'sdk' | 'hand') => JSON.stringify({ engine: 'sqlite', target: targetOf('sqlite', engine.file), accounts: `${engine.prefix}accounts`, route, table });
      const servers = [await startServer(workers.idempotency, [args('sdk')], 'sdk'), await startServer(workers.idempotency, [args('hand')], 'hand')];
      try {
        const post = async (port: number, key: string) => {
          const response = await fetch(`http://127.0.0.1:${port}/transfer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"`, 'x-client': 'bench' },
            body: JSON.stringify({ account: 7, amount: 1 }),
          });
          return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
        };
        const [sdk, hand] = [await post(servers[0]!.port, 'key-sdk'), await post(servers[1]!.port, 'key-hand')];
        expect(sdk).toEqual({ status: 201, type: 'application/json; charset=utf-8', body: '{"account":7}' });
        expect(hand).toEqual(sdk);
        const db = new Database(engine.file!, { readonly: true });
        const rows = db.prepare(`SELECT idem_key, fingerprint, status, headers, CAST(body AS TEXT) AS body FROM "${table}" ORDER BY idem_key`).all() as Record<string, unknown>[];
        db.close();
        expect(rows.map(({ idem_key, ...row }) => row)).toEqual([rows[0]!, rows[0]!].map(({ idem_key, ...row }) => row));
        expect(rows.map((row) => row.idem_key)).toEqual(['key-hand', 'key-sdk']);
      } finally {
        await Promise.all(servers.map(({ child }) => stopFront(child)));
      }
    } finally {
      workers.dispose();
      await engine.close();
    }
  });
});

for (const engine of ['mysql', 'postgres'] as const) {
  describe.skipIf(!hasServer(engine))(`benchmarks: ${engine}`, () => {
    it('runs every database section once', async () => {
      const { engineReport } = await smoke(engine, DATABASE_SECTIONS);
      expectDatabaseSections(engineReport);
    });
  });
}
