/**
 * The dashboard's API on each engine: what the snapshot reports against rows written on purpose,
 * the bounded counts, a missing table, hidden payloads, and the actions: refused read-only, without
 * the CSRF token, from another origin and unauthorised; done when all is well.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, type DashboardOptions, type Snapshot } from '../../src/dashboard/index.js';
import { ensureIdempotencySchema } from '../../src/idempotency/guard.js';
import { ENGINES, type EngineHarness, openEngine } from '../outbox/harness.js';

const BASE = 'http://127.0.0.1:8080/ops';
const SECRET_PAYLOAD = 'card 4111-1111-1111-1111';

/** An expression for "now minus `days` days" in the table's timestamp type. */
function daysAgo(engine: EngineHarness['name'], days: number): string {
  if (engine === 'postgres') return `CURRENT_TIMESTAMP - INTERVAL '${days} days'`;
  if (engine === 'mysql') return `UTC_TIMESTAMP() - INTERVAL ${days} DAY`;
  return `datetime('now', '${-days} days')`;
}

function quoted(engine: EngineHarness['name'], table: string): string {
  return engine === 'mysql' ? `\`${table}\`` : `"${table}"`;
}

/** The page's own request: same origin, with the token from the page. */
async function pageToken(dashboard: ReturnType<typeof createDashboard>): Promise<string | undefined> {
  const page = await (await dashboard.handle(new Request(`${BASE}/`), '/ops', undefined as never)).text();
  return /"csrf":"([^"]+)"/.exec(page)?.[1];
}

async function snapshotOf(dashboard: ReturnType<typeof createDashboard>): Promise<Snapshot & { dryRun: string | null; actions: boolean }> {
  const response = await dashboard.handle(new Request(`${BASE}/api/snapshot`), '/ops', undefined as never);
  expect(response.status).toBe(200);
  return response.json() as never;
}

for (const engine of ENGINES) {
  describe.skipIf(engine.skip)(`dashboard on ${engine.name}`, () => {
    let db: EngineHarness;
    let keys: string;
    let options: DashboardOptions;
    const ids: Record<'pending' | 'parked' | 'sent', string[]> = { pending: [], parked: [], sent: [] };

    beforeAll(async () => {
      db = await openEngine(engine.name);
      keys = `keys_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
      await ensureIdempotencySchema(db.store, { table: keys });
      options = { outbox: { table: db.outbox.table }, idempotency: { table: keys }, barrier: { retention: '7d' } };
      for (let i = 0; i < 6; i++) {
        const id = await db.outbox.store.transaction(({ tx }) =>
          db.outbox.enqueue(tx, { topic: 'orders', key: i === 0 ? 'k1' : undefined, payload: SECRET_PAYLOAD, headers: { authorization: 'Bearer hidden' } }),
        );
        (i < 3 ? ids.pending : i < 5 ? ids.parked : ids.sent).push(id);
      }
      const outbox = quoted(engine.name, db.outbox.table);
      const list = (values: string[]) => values.map((id) => `'${id}'`).join(', ');
      await db.query(`UPDATE ${outbox} SET status = 'parked', last_error = 'broker said no', attempts = 20 WHERE id IN (${list(ids.parked)})`);
      await db.query(`UPDATE ${outbox} SET status = 'sent', sent_at = created_at WHERE id IN (${list(ids.sent)})`);
      // One pending message two days old, one held by a lease: the histogram and "in flight" must see them.
      await db.query(`UPDATE ${outbox} SET created_at = ${daysAgo(engine.name, 2)} WHERE id = '${ids.pending[1]}'`);
      await db.query(`UPDATE ${outbox} SET available_at = ${daysAgo(engine.name, -1)}, attempts = 1 WHERE id = '${ids.pending[2]}'`);
      const barrier = db.store.dialect.quoteTable(db.store.table);
      const now = engine.name === 'mysql' ? 'UTC_TIMESTAMP()' : 'CURRENT_TIMESTAMP';
      // Two past the retention, one DTM branch and one consumed message (branch = consumer/source) within it.
      for (const [gid, branch, when] of [
        ['old-1', '01', daysAgo(engine.name, 10)],
        ['old-2', '01', daysAgo(engine.name, 9)],
        ['new-1', '01', now],
        ['msg-1', 'billing/orders-queue', now],
      ] as const) {
        await db.query(
          `INSERT INTO ${barrier} (trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time) ` +
            `VALUES ('saga', '${gid}', '${branch}', 'action', '01', 'action', ${when}, ${when})`,
        );
      }
      const t = Date.now();
      const keysTable = quoted(engine.name, keys);
      for (const [key, status, created, expires] of [
        ['expired', 201, t - 90_000_000, t - 3_600_000],
        ['done', 201, t - 1000, t + 86_400_000],
        ['stuck', null, t - 600_000, t + 80_000_000],
      ] as const) {
        await db.query(
          `INSERT INTO ${keysTable} (scope, idem_key, fingerprint, status, created_at, expires_at) VALUES ('s', '${key}', '${'0'.repeat(64)}', ${status}, ${created}, ${expires})`,
        );
      }
    });
    afterAll(async () => {
      await db?.query(`DROP TABLE IF EXISTS ${quoted(engine.name, keys)}`);
      await db?.close();
    });

    it('reports the outbox, the barrier table and the keys as the rows are', async () => {
      const snapshot = await snapshotOf(createDashboard(db.store, options));
      const outbox = snapshot.outbox as Exclude<Snapshot['outbox'], null | { missing: true }>;
      expect(outbox.pending).toMatchObject({ count: 3, capped: false, held: 1, leased: 1 });
      expect(outbox.pending.oldestSeconds).toBeGreaterThan(2 * 86_400 - 60);
      expect(outbox.pending.ages).toEqual([2, 0, 0, 0, 0, 0, 1]);
      expect(outbox.pending.messages.map((m) => m.id)).toEqual(ids.pending);
      expect(outbox.parked).toMatchObject({ count: 2, held: 0 });
      expect(outbox.parked.messages.map((m) => [m.id, m.lastError, m.attempts])).toEqual(ids.parked.map((id) => [id, 'broker said no', 20]));
      expect(outbox.sent).toEqual({ examined: 1, recent: 1, windowSeconds: 300 });

      const barrier = snapshot.barrier as Exclude<Snapshot['barrier'], null | { missing: true }>;
      expect(barrier.rows).toEqual({ count: 4, kind: 'exact' });
      expect(barrier.consumers).toEqual({ examined: 4, keys: [{ key: 'billing/orders-queue', rows: 1 }] });
      expect(barrier.oldestSeconds).toBeGreaterThan(10 * 86_400 - 60);
      expect(barrier.oldestSeconds).toBeLessThan(10 * 86_400 + 60);
      expect(barrier.retentionSeconds).toBe(7 * 86_400);
      expect(barrier.prunable).toEqual({ count: 2, capped: false });

      expect(snapshot.idempotency).toMatchObject({
        expired: { count: 1, capped: false },
        live: { count: 2, capped: false, completed: 1, inProgress: 1, stuck: 1 },
        stuckAfterSeconds: 60,
      });
      // Nothing of a message's body or headers is in the snapshot.
      const text = JSON.stringify(snapshot);
      expect(text).not.toContain('4111');
      expect(text).not.toContain('Bearer hidden');
    });

    it('stops every count at countLimit and says so; the barrier count becomes an estimate or a floor', async () => {
      const snapshot = await snapshotOf(createDashboard(db.store, { ...options, countLimit: 2 }));
      const outbox = snapshot.outbox as Exclude<Snapshot['outbox'], null | { missing: true }>;
      expect(outbox.pending).toMatchObject({ count: 2, capped: true });
      expect(snapshot.barrier).toMatchObject({ prunable: { count: 2, capped: true } });
      const rows = (snapshot.barrier as { rows: { kind: string; count: number } }).rows;
      // SQLite keeps no statistics; PostgreSQL's and InnoDB's may not have seen three rows yet.
      if (rows.kind === 'estimate') expect(rows.count).toBeGreaterThan(2);
      else expect(rows).toEqual({ kind: 'at-least', count: 2 });
    });

    it('shows a table that does not exist as missing, and the other sections still', async () => {
      const snapshot = await snapshotOf(createDashboard(db.store, { ...options, idempotency: { table: 'no_such_keys' } }));
      expect(snapshot.idempotency).toEqual({ table: 'no_such_keys', missing: true });
      expect(snapshot.barrier).toMatchObject({ rows: { count: 4 } });
    });

    it('hides payloads and headers unless showPayloads, and then opens one message', async () => {
      const hidden = await createDashboard(db.store, options).handle(new Request(`${BASE}/api/message?id=${ids.parked[0]}`), '/ops', undefined as never);
      expect(hidden.status).toBe(403);
      expect(await hidden.json()).toMatchObject({ code: 'ERR_TXBARRIER_DASHBOARD_HIDDEN' });
      const shown = await createDashboard(db.store, { ...options, showPayloads: true }).handle(
        new Request(`${BASE}/api/message?id=${ids.parked[0]}`),
        '/ops',
        undefined as never,
      );
      expect(await shown.json()).toMatchObject({ id: ids.parked[0], payload: SECRET_PAYLOAD, status: 'parked' });
    });

    it('refuses actions when read-only, without the CSRF token, from another origin, and unauthorised, changing nothing', async () => {
      const post = (dashboard: ReturnType<typeof createDashboard>, path: string, headers: Record<string, string> = {}) =>
        dashboard.handle(new Request(`${BASE}${path}`, { method: 'POST', headers }), '/ops', undefined as never);
      const requeue = `/api/actions/requeue?id=${ids.parked[0]}`;
      const readOnly = createDashboard(db.store, options);
      expect(await pageToken(readOnly)).toBeUndefined();
      const refused = await post(readOnly, requeue, { 'x-txbarrier-csrf': 'anything' });
      expect([refused.status, ((await refused.json()) as { code: string }).code]).toEqual([403, 'ERR_TXBARRIER_DASHBOARD_READ_ONLY']);

      let allow = false;
      const seen: unknown[] = [];
      const acting = createDashboard(db.store, { ...options, actions: { authorize: (request) => (seen.push(request.headers.get('x-user')), allow) } });
      const token = (await pageToken(acting))!;
      expect(token).toMatch(/^[\w-]{20,}$/);
      const codes = async (response: Response) => [response.status, ((await response.json()) as { code: string }).code];
      expect(await codes(await post(acting, requeue))).toEqual([403, 'ERR_TXBARRIER_DASHBOARD_CSRF']);
      expect(await codes(await post(acting, requeue, { 'x-txbarrier-csrf': `${token}x` }))).toEqual([403, 'ERR_TXBARRIER_DASHBOARD_CSRF']);
      expect(await codes(await post(acting, requeue, { 'x-txbarrier-csrf': token, origin: 'https://evil.example' }))).toEqual([403, 'ERR_TXBARRIER_DASHBOARD_CSRF']);
      expect(await codes(await post(acting, requeue, { 'x-txbarrier-csrf': token, 'sec-fetch-site': 'cross-site' }))).toEqual([403, 'ERR_TXBARRIER_DASHBOARD_CSRF']);
      expect(seen).toEqual([]);
      expect(await codes(await post(acting, requeue, { 'x-txbarrier-csrf': token, 'x-user': 'mallory' }))).toEqual([403, 'ERR_TXBARRIER_DASHBOARD_FORBIDDEN']);
      expect(seen).toEqual(['mallory']);
      expect((await db.outbox.parked()).map((m) => m.id)).toEqual(ids.parked);

      allow = true;
      const ok = { 'x-txbarrier-csrf': token, origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-origin' };
      expect(await codes(await post(acting, '/api/actions/requeue?id=bad%20id', ok))).toEqual([400, 'ERR_TXBARRIER_DASHBOARD_INPUT']);
      expect(await codes(await post(acting, `/api/actions/requeue?id=${ids.pending[0]}`, ok))).toEqual([409, 'ERR_TXBARRIER_DASHBOARD_STATE']);
      expect(await codes(await post(acting, '/api/actions/prune?table=barrier', ok))).toEqual([400, 'ERR_TXBARRIER_DASHBOARD_DRY_RUN']);
      expect(await codes(await post(acting, '/api/actions/prune?table=barrier&dryRun=1.forged', ok))).toEqual([400, 'ERR_TXBARRIER_DASHBOARD_DRY_RUN']);

      const requeued = await post(acting, requeue, ok);
      expect(await requeued.json()).toEqual({ requeued: 1 });
      expect((await db.outbox.parked()).map((m) => m.id)).toEqual(ids.parked.slice(1));
      const parked = await post(acting, `/api/actions/park?id=${ids.pending[0]}`, ok);
      expect(await parked.json()).toEqual({ parked: 1 });
      expect((await db.outbox.parked()).map((m) => [m.id, m.lastError])).toEqual([
        [ids.pending[0], 'parked from the dashboard'],
        [ids.parked[1], 'broker said no'],
      ]);

      const { dryRun, barrier } = await snapshotOf(acting);
      expect(barrier).toMatchObject({ prunable: { count: 2 } });
      expect(await (await post(acting, `/api/actions/prune?table=barrier&dryRun=${dryRun}`, ok)).json()).toEqual({ deleted: 2 });
      expect(await (await post(acting, `/api/actions/prune?table=idempotency&dryRun=${dryRun}`, ok)).json()).toEqual({ deleted: 1 });
      expect(await snapshotOf(acting)).toMatchObject({ barrier: { rows: { count: 2 }, prunable: { count: 0 } }, idempotency: { expired: { count: 0 } } });
    });
  });
}

describe('dashboard: options and routes', () => {
  let db: EngineHarness;
  beforeAll(async () => {
    db = await openEngine('sqlite');
  });
  afterAll(async () => {
    await db?.close();
  });

  it('refuses bad options with a typed error when it is made', () => {
    const bad: [DashboardOptions, string][] = [
      [{ countLimit: 0 }, 'ERR_TXBARRIER_OPTION'],
      [{ stuckAfter: 'soon' }, 'ERR_TXBARRIER_OPTION'],
      [{ refreshInterval: -1 }, 'ERR_TXBARRIER_OPTION'],
      [{ outbox: { table: 'a;b' } }, 'ERR_TXBARRIER_TABLE_NAME'],
      [{ barrier: { retention: '1h' } }, 'ERR_TXBARRIER_RETENTION'],
      [{ actions: {} as never }, 'ERR_TXBARRIER_OPTION'],
    ];
    for (const [options, code] of bad) {
      let thrown: unknown;
      try {
        createDashboard(db.store, options);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, JSON.stringify(options)).toMatchObject({ code });
    }
  });

  it('serves the page with a nonce-only Content-Security-Policy, redirects the bare path, and 404s the rest', async () => {
    const dashboard = createDashboard(db.store, { outbox: { table: db.outbox.table }, title: '<Ops & co>' });
    const page = await dashboard.handle(new Request(`${BASE}/`), '/ops', undefined as never);
    const csp = page.headers.get('content-security-policy')!;
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    const html = await page.text();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).toContain('&#60;Ops &#38; co&#62;');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toBe('no-store');
    const bare = await dashboard.handle(new Request(`${BASE}?x=1`), '/ops', undefined as never);
    expect([bare.status, bare.headers.get('location')]).toEqual([308, '/ops/?x=1']);
    const metrics = createDashboard(db.store, { metrics: { prometheus: async () => 'txbarrier_outbox_pending 3\n' } });
    const scrape = await metrics.handle(new Request(`${BASE}/metrics`), '/ops', undefined as never);
    expect([scrape.status, scrape.headers.get('content-type'), await scrape.text()]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8', 'txbarrier_outbox_pending 3\n']);
    for (const [method, path] of [['GET', '/api/nothing'], ['POST', '/api/snapshot'], ['GET', '/api/actions/requeue'], ['GET', '/metrics']]) {
      const response = await dashboard.handle(new Request(`${BASE}${path}`, { method }), '/ops', undefined as never);
      expect(response.status, `${method} ${path}`).toBe(404);
    }
  });
});
