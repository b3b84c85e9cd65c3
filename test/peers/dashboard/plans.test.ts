/**
 * Every statement the dashboard's page runs, on each engine with 100k rows in the outbox, the
 * barrier table and the key table: the engine's own account of how many rows each statement read
 * (PostgreSQL's EXPLAIN ANALYZE, MariaDB's ANALYZE) stays within the count limit, so no statement
 * scans a table. SQLite tells no row counts: its plan may walk a table or index only in the two
 * statements labelled bounded (the barrier count, and the consumers among the newest rows: both stop
 * at their LIMIT).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillDashboardTables } from '../../../bench/dashboard-data.js';
import { createDashboard } from '../../../src/dashboard/index.js';
import { ensureIdempotencySchema } from '../../../src/idempotency/guard.js';
import type { BarrierStore } from '../../../src/index.js';
import { ENGINES, type EngineHarness, openEngine } from '../../outbox/harness.js';

const ROWS = 100_000;
const LIMIT = 1000;

/** Rows each plan node read from one of `tables`, by the engine's own count. */
function rowsRead(engine: 'postgres' | 'mysql', plan: unknown, tables: string[]): { table: string; read: number }[] {
  const found: { table: string; read: number }[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (engine === 'postgres' && tables.includes(String(n['Relation Name']))) {
      const loops = Number(n['Actual Loops'] ?? 1);
      const read = (Number(n['Actual Rows']) + Number(n['Rows Removed by Filter'] ?? 0) + Number(n['Rows Removed by Index Recheck'] ?? 0)) * loops;
      found.push({ table: String(n['Relation Name']), read });
    }
    if (engine === 'mysql' && tables.includes(String(n.table_name)) && n.r_rows !== undefined) {
      found.push({ table: String(n.table_name), read: Number(n.r_rows) * Number(n.r_loops ?? 1) });
    }
    Object.values(n).forEach(walk);
  };
  walk(plan);
  return found;
}

for (const engine of ENGINES) {
  describe.skipIf(engine.skip)(`dashboard query plans on ${engine.name} at ${ROWS} rows`, () => {
    let db: EngineHarness;
    let keys: string;
    const statements: [string, readonly unknown[]][] = [];

    beforeAll(async () => {
      db = await openEngine(engine.name);
      keys = `keys_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
      await ensureIdempotencySchema(db.store, { table: keys });
      const tables = { outbox: db.outbox.table, barrier: db.store.table, keys };
      await fillDashboardTables(engine.name, (sql) => db.query(sql), tables, { outbox: ROWS, barrier: ROWS, keys: ROWS });
      // As autovacuum or InnoDB's sampling would have by now on a table this size.
      for (const table of Object.values(tables)) await db.query(engine.name === 'mysql' ? `ANALYZE TABLE \`${table}\`` : `ANALYZE ${table}`);
      // The statements the page's requests run, as they run them.
      const recording: BarrierStore<unknown> = {
        ...db.store,
        transaction: (work) => db.store.transaction((c) => work({ ...c, select: (sql, params) => (statements.push([sql, params]), c.select(sql, params)) })),
      };
      const dashboard = createDashboard(recording, { outbox: { table: db.outbox.table }, idempotency: { table: keys }, countLimit: LIMIT, showPayloads: true });
      const snapshot = await dashboard.handle(new Request('http://x/api/snapshot'), '', undefined as never);
      expect(snapshot.status).toBe(200);
      expect(await snapshot.json()).toMatchObject({ outbox: { pending: { capped: true } }, barrier: { prunable: { capped: true } } });
      const message = await dashboard.handle(new Request('http://x/api/message?id=m-5'), '', undefined as never);
      expect(message.status).toBe(200);
    }, 300_000);
    afterAll(async () => {
      await db?.query(`DROP TABLE IF EXISTS ${keys}`);
      await db?.close();
    });

    it('reads at most the count limit of rows in every statement', async () => {
      expect(statements.length).toBeGreaterThanOrEqual(10);
      const tables = [db.outbox.table, db.store.table.split('.').at(-1)!, keys];
      const report: string[] = [];
      for (const [sql, params] of statements) {
        if (engine.name === 'sqlite') {
          const plan = (await db.query(`EXPLAIN QUERY PLAN ${sql}`, [...params])).map((row) => String(row.detail));
          // Labelled bounded scans: each reads one end of an index and stops at its LIMIT (SQLite's plan says
          // SCAN for any walk of a whole index, bounded or not).
          const stats = db.store.dialect.stats(db.store.table);
          const boundedScan = sql === stats.countUpTo || sql === stats.recentConsumers;
          const scans = plan.filter((detail) => tables.some((table) => new RegExp(`^SCAN ${table}\\b`).test(detail)));
          if (scans.length > 0 && !boundedScan) report.push(`${sql}\n  scans: ${scans.join('; ')}`);
          continue;
        }
        const [row] = await db.query(engine.name === 'postgres' ? `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}` : `ANALYZE FORMAT=JSON ${sql}`, [...params]);
        const plan = engine.name === 'postgres' ? row!['QUERY PLAN'] : JSON.parse(String(row!.ANALYZE));
        for (const { table, read } of rowsRead(engine.name, plan, tables)) {
          if (read > LIMIT + 1) report.push(`${sql}\n  read ${read} rows of ${table}`);
        }
      }
      expect(report).toEqual([]);
    });
  });
}
