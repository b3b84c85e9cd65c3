/**
 * The claim's cost must not grow with the messages already sent: a relay draining a backlog of
 * 100,000 on PostgreSQL spent 150 ms per claim at 82,000 sent (the planner walked the primary key
 * through every sent message), so the drain was quadratic; SQLite, once ANALYZE has seen a
 * pending backlog, scans the table from its first row the same way. Counted in buffer reads and
 * read from the query plan, which are deterministic where timings are not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay } from '../../src/messaging/outbox/index.js';
import { ENGINES, type EngineHarness, openEngine } from './harness.js';

const postgres = ENGINES.find((engine) => engine.name === 'postgres');

describe("the relay's claim on a half-drained backlog (SQLite)", () => {
  it('searches the (status, seq) index even when ANALYZE saw every message pending', async () => {
    const db = await openEngine('sqlite');
    try {
      const table = db.outbox.table;
      await db.query(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
        INSERT INTO ${table} (id, topic, headers, payload, available_at, created_at) SELECT 'm' || i, 't', '{}', x'00', '2020-01-01', '2020-01-01' FROM n`);
      await db.query('ANALYZE');
      await db.query(`UPDATE ${table} SET status = 'sent' WHERE seq <= 1800`);
      const plan = await db.query(`EXPLAIN QUERY PLAN ${db.outbox.sql.claim(100)}`);
      // Before: 'SCAN o', from the first sent message on.
      expect(String(plan[0]?.detail)).toMatch(/^SEARCH o USING INDEX \S+_status_seq/);
    } finally {
      await db.close();
    }
  });
});

describe.skipIf(!postgres || postgres.skip)('the relay\'s claim on a half-drained backlog (PostgreSQL)', () => {
  let db: EngineHarness;
  beforeAll(async () => {
    db = await openEngine('postgres');
  });
  afterAll(async () => {
    await db?.close();
  });

  it('reads about one batch of index entries and rows, however many messages were sent before them', async () => {
    const table = db.outbox.table;
    // Statistics as autovacuum takes them of a fresh backlog (all pending), and kept so: a later
    // ANALYZE would hide the plan this guards against.
    await db.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    await db.query(
      `INSERT INTO ${table} (id, topic, headers, payload) SELECT gen_random_uuid()::text, 't', '{}', '\\x00'::bytea FROM generate_series(1, 5000)`,
    );
    await db.query(`ANALYZE ${table}`);
    const relay = createRelay(db.outbox, { publisher: { publish: async () => {} }, batchSize: 100 });
    let sent = 0;
    while (sent < 4500) sent += await relay.runOnce();

    const [{ 'QUERY PLAN': [plan] }] = (await db.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${db.outbox.sql.claim(100)}`)) as [
      { 'QUERY PLAN': [{ Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number; 'Actual Rows': number } }] },
    ];
    expect(plan.Plan['Actual Rows']).toBe(100);
    // Walking the primary key: 4,500 sent rows fetched and filtered out (measured ~3,000 blocks).
    // Along (status, seq): the previous claim's dead entries and the 100 rows claimed (~320).
    expect(plan.Plan['Shared Hit Blocks'] + plan.Plan['Shared Read Blocks']).toBeLessThan(1000);
  });
});
