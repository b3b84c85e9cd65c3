/**
 * A deterministic guard for the consumers' hot path, beside bench/consumers.ts's timings: what one
 * delivery through the broker-neutral core costs beyond the barrier call it makes (the same
 * `messageBarrier(…).call(store, handle)` made directly), on PostgreSQL: statements sent and
 * promises created. A delivery adds one statement only with `legacyKeyCheck` (the source-less row)
 * and, with an adapter whose ack is a plain call (RabbitMQ, BullMQ), two promises: its own async
 * frame and its await. A change that adds a statement, an async layer or a per-message `finally`
 * fails here, however small its effect on the timings.
 */
import { createHook } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { messageBarrier, messageConsumer } from '../../src/messaging/consumer.js';
import { hasServer } from '../support/servers.js';
import { type PostgresPool, postgresPool } from '../support/server-harness.js';

/** The core's own promises per delivery beyond its barrier call, with a synchronous settlement (an ack). */
const OWN_PROMISES = 2;
const CALLS = 50;

describe.skipIf(!hasServer('postgres'))('a delivery through the consumer core, on PostgreSQL', () => {
  const suffix = randomUUID().slice(0, 8);
  const table = `budget_barrier_${suffix}`;
  const ledger = `budget_ledger_${suffix}`;
  let pool: PostgresPool;
  let statements = 0;

  beforeAll(async () => {
    pool = postgresPool({ max: 1 });
    // Count what every pooled client sends.
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        statements++;
        return query(...args);
      };
    });
    await postgresStore(pool, { table }).ensureSchema();
    await pool.query(`CREATE TABLE ${ledger} (message_id TEXT NOT NULL)`);
  });
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}, ${ledger}`);
    await pool.end();
  });

  /** Statements and promises per op over CALLS ops, after as many unmeasured (connections, caches, the tracer's import). */
  async function perOp(op: (id: string) => Promise<unknown>): Promise<{ statements: number; promises: number }> {
    for (let i = 0; i < CALLS; i++) await op(randomUUID());
    const ids = Array.from({ length: CALLS }, () => randomUUID());
    let promises = 0;
    const hook = createHook({ init: (_id, type) => void (type === 'PROMISE' && promises++) });
    statements = 0;
    hook.enable();
    for (const id of ids) await op(id);
    hook.disable();
    return { statements: statements / CALLS, promises: promises / CALLS };
  }

  const store = () => postgresStore(pool, { table });
  const handle = (tx: { query(sql: string, values: unknown[]): Promise<unknown> }, message: { id: string }) =>
    tx.query(`INSERT INTO ${ledger} (message_id) VALUES ($1)`, [message.id]);
  const delivering = (legacyKeyCheck: boolean) => {
    const core = messageConsumer({ store: store(), consumer: 'budget', legacyKeyCheck, handle });
    return async (id: string) => {
      const settlement = await core.deliver({ message: { id }, id, source: ['queue'], attempt: 1, header: () => undefined }, () => undefined);
      if (settlement !== 'applied') throw new Error(`${id}: ${settlement}`);
    };
  };

  it('adds no statement and two promises to its barrier call, and the legacy key check one statement', async () => {
    const s = store();
    // Both ops are wrapped alike (an async frame and an await), so the difference is the core's.
    const call = await perOp(async (id) => {
      const { outcome } = await messageBarrier('budget', ['queue'], id).call(s, (tx) => handle(tx, { id }));
      if (outcome !== 'applied') throw new Error(`${id}: ${outcome}`);
    });
    const delivery = await perOp(delivering(false));
    const legacy = await perOp(delivering(true));
    const counts = { call, delivery, legacy };
    expect(call.statements, JSON.stringify(counts)).toBe(4);
    expect(delivery.statements, JSON.stringify(counts)).toBe(call.statements);
    expect(legacy.statements, JSON.stringify(counts)).toBe(call.statements + 1);
    expect(delivery.promises - call.promises, JSON.stringify(counts)).toBeLessThanOrEqual(OWN_PROMISES);
  });
});
