/**
 * OpenTelemetry metrics on each engine, read back with an in-memory metric reader: the barrier's
 * outcomes, conflicts and timeouts; the outbox's enqueues, publishes, parked messages and failed
 * rounds; the consumer's settlements, retries and dead letters; idempotent routes' outcomes. Then
 * the table gauges, through OpenTelemetry and through `/metrics`, parsed by a Prometheus text parser.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idempotencyGuard } from '../../src/idempotency/guard.js';
import { Barrier, BarrierConfigError, BarrierFailure, BarrierOngoing, BarrierTimeout, tableMetrics } from '../../src/index.js';
import { messageConsumer } from '../../src/messaging/consumer.js';
import { createOutbox, createRelay, type OutboxPublisher } from '../../src/messaging/outbox/index.js';
import { INSTRUMENTS } from '../../src/observe/metrics.js';
import { TABLE_GAUGES } from '../../src/observe/tables.js';
import { conflictEngines } from '../support/conflict-engines.js';
import { openEngine as openIdempotency } from '../idempotency/harness.js';
import { openEngine as openOutbox } from '../outbox/harness.js';
import { waitUntil } from '../support/server-harness.js';
import { takeWarnings } from '../support/warnings.js';

/** Collects on demand: what a periodic exporter would send, without the period. */
class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const reader = new TestReader();
const provider = new MeterProvider({ readers: [reader] });
beforeAll(() => {
  metrics.setGlobalMeterProvider(provider);
});
afterAll(async () => {
  metrics.disable();
  await provider.shutdown();
});

type Point = { name: string; attributes: Record<string, unknown>; value: number };

/** Every data point: a counter's or gauge's value, a histogram's count. Cumulative since the provider was set. */
async function collect(): Promise<Point[]> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  return resourceMetrics.scopeMetrics
    .filter((scope) => scope.scope.name === 'txbarrier')
    .flatMap((scope) => scope.metrics)
    .flatMap((metric) =>
      metric.dataPoints.map((point) => ({
        name: metric.descriptor.name,
        attributes: point.attributes as Record<string, unknown>,
        value: typeof point.value === 'number' ? point.value : (point.value as { count: number }).count,
      })),
    );
}

/** What happened since: a function that resolves to each instrument's points that grew, with how much, as `name {attributes}` → delta. */
async function since(): Promise<() => Promise<Record<string, number>>> {
  const key = (p: Point) => `${p.name} ${JSON.stringify(Object.fromEntries(Object.entries(p.attributes).sort()))}`;
  const before = new Map((await collect()).map((p) => [key(p), p.value]));
  return async () => {
    const grown: Record<string, number> = {};
    for (const p of await collect()) {
      const delta = p.value - (before.get(key(p)) ?? 0);
      if (delta !== 0 && !TABLE_GAUGE_NAMES.has(p.name)) grown[key(p)] = delta;
    }
    return grown;
  };
}
const TABLE_GAUGE_NAMES = new Set(Object.values(TABLE_GAUGES).map((g) => g.name));
const entry = (name: string, attributes: Record<string, unknown>) => `${name} ${JSON.stringify(Object.fromEntries(Object.entries(attributes).sort()))}`;

/** Every id, key and scope the tests send: none may appear as an attribute value. */
const unbounded = new Set<string>();
const fresh = (prefix: string) => {
  const value = `${prefix}-${randomUUID()}`;
  unbounded.add(value);
  return value;
};

const DB_SYSTEM = { sqlite: 'sqlite', mysql: 'mysql', postgres: 'postgresql' } as const;
/** The class name (`error.type`) of each driver's error for the conflict `conflictEngines` provokes; pg names its errors `error`. */
const CONFLICT_ERROR: Record<string, string> = { sqlite: 'SqliteError', mysql: 'Error', postgres: 'error' };

for (const [engine, available, open] of conflictEngines(`metrics_${randomUUID().slice(0, 6)}`)) {
  const system = DB_SYSTEM[engine as keyof typeof DB_SYSTEM];
  describe.skipIf(!available())(`metrics on ${engine}`, () => {
    let h: Awaited<ReturnType<typeof open>>;
    beforeAll(async () => {
      h = await open();
    });
    afterAll(() => h?.close());

    const saga = (gid: string, op: 'action' | 'compensate') => Barrier.from({ transType: 'saga', gid, branchId: '01', op });

    it('counts barrier outcomes by op and outcome, with their duration, and database conflicts apart', async () => {
      const grown = await since();
      const [a, b, c, d] = [fresh('gid'), fresh('gid'), fresh('gid'), fresh('gid')];
      await saga(a, 'action').call(h.store, (tx) => h.record(tx, a, 'a'));
      await saga(a, 'action').call(h.store, (tx) => h.record(tx, a, 'again'));
      await saga(b, 'compensate').call(h.store, () => 'nothing to undo');
      await saga(b, 'action').call(h.store, () => 'too late');
      await expect(saga(c, 'action').call(h.store, () => Promise.reject(new BarrierFailure('refused')))).rejects.toBeInstanceOf(BarrierFailure);
      // A deadlock, serialization failure or busy file in the function's own statements: the function's error, unchanged.
      await expect(saga(d, 'action').call(h.store, (tx) => h.conflict(tx))).rejects.toMatchObject({ name: CONFLICT_ERROR[engine] });

      const base = { 'db.system.name': system, 'txbarrier.trans_type': 'saga' };
      const duration = INSTRUMENTS.barrierDuration.name;
      expect(await grown()).toEqual({
        [entry(duration, { ...base, 'txbarrier.op': 'action', 'txbarrier.outcome': 'applied' })]: 1,
        [entry(duration, { ...base, 'txbarrier.op': 'action', 'txbarrier.outcome': 'duplicate' })]: 1,
        [entry(duration, { ...base, 'txbarrier.op': 'compensate', 'txbarrier.outcome': 'null-compensation' })]: 1,
        [entry(duration, { ...base, 'txbarrier.op': 'action', 'txbarrier.outcome': 'dangling' })]: 1,
        [entry(duration, { ...base, 'txbarrier.op': 'action', 'txbarrier.outcome': 'failure', 'error.type': 'BarrierFailure' })]: 1,
        [entry(duration, { ...base, 'txbarrier.op': 'action', 'txbarrier.outcome': 'error', 'error.type': CONFLICT_ERROR[engine] })]: 1,
        [entry(INSTRUMENTS.barrierConflicts.name, { ...base, 'txbarrier.op': 'action' })]: 1,
      });
    });

    // SQLite's store has no transactionTimeout: its one connection cannot be closed under a hung function.
    if (engine !== 'sqlite') {
      it('counts a transaction timeout as a timeout, not a conflict', async () => {
        const grown = await since();
        const store = h.makeStore({ table: h.store.table, transactionTimeout: 100 });
        await expect(saga(fresh('gid'), 'action').call(store, () => new Promise(() => {}))).rejects.toBeInstanceOf(BarrierTimeout);
        const base = { 'db.system.name': system, 'txbarrier.trans_type': 'saga', 'txbarrier.op': 'action' };
        expect(await grown()).toEqual({
          [entry(INSTRUMENTS.barrierDuration.name, { ...base, 'txbarrier.outcome': 'ongoing', 'error.type': 'BarrierTimeout' })]: 1,
          [entry(INSTRUMENTS.barrierTimeouts.name, base)]: 1,
        });
      });
    }

    it('counts consumer settlements, retries and dead letters by the consumer name, never the message id', async () => {
      const consumer = `metrics-${engine}`;
      const core = messageConsumer<unknown, string>({
        store: h.store,
        consumer,
        legacyKeyCheck: false,
        maxAttempts: 2,
        handle: async (tx, message) => {
          if (message === 'poison') throw new BarrierFailure('never applies');
          if (message === 'flaky') throw new Error('not yet');
          await h.record(tx, 'consumer', message);
        },
      });
      const grown = await since();
      const deliver = (message: string, id: unknown, attempt = 1) =>
        core.deliver({ message, id, source: ['orders'], attempt, header: () => undefined }, () => undefined);
      const id = fresh('message');
      expect(await deliver('ok', id)).toBe('applied');
      expect(await deliver('ok', id)).toBe('duplicate');
      const flaky = fresh('message');
      expect(await deliver('flaky', flaky, 1)).toBe('retry');
      expect(await deliver('flaky', flaky, 2)).toBe('dead-letter');
      expect(await deliver('poison', fresh('message'))).toBe('dead-letter');
      expect(await deliver('no id', undefined)).toBe('dead-letter');

      const duration = INSTRUMENTS.consumerDuration.name;
      const of = { 'txbarrier.consumer': consumer };
      expect(await grown()).toEqual({
        [entry(duration, { ...of, 'txbarrier.settlement': 'applied' })]: 1,
        [entry(duration, { ...of, 'txbarrier.settlement': 'duplicate' })]: 1,
        [entry(duration, { ...of, 'txbarrier.settlement': 'retry', 'error.type': 'Error' })]: 1,
        [entry(duration, { ...of, 'txbarrier.settlement': 'dead-letter', 'error.type': 'Error' })]: 1,
        [entry(duration, { ...of, 'txbarrier.settlement': 'dead-letter', 'error.type': 'BarrierFailure' })]: 1,
        [entry(duration, { ...of, 'txbarrier.settlement': 'dead-letter', 'error.type': 'BarrierMessageIdError' })]: 1,
        [entry(INSTRUMENTS.consumerRetries.name, of)]: 1,
        [entry(INSTRUMENTS.consumerDeadLetters.name, { ...of, 'txbarrier.dead_letter.reason': 'attempts' })]: 1,
        [entry(INSTRUMENTS.consumerDeadLetters.name, { ...of, 'txbarrier.dead_letter.reason': 'failure' })]: 1,
        [entry(INSTRUMENTS.consumerDeadLetters.name, { ...of, 'txbarrier.dead_letter.reason': 'no-id' })]: 1,
        // The barrier's own calls under the consumer.
        [entry(INSTRUMENTS.barrierDuration.name, { 'db.system.name': system, 'txbarrier.trans_type': 'saga', 'txbarrier.op': 'action', 'txbarrier.outcome': 'applied' })]: 1,
        [entry(INSTRUMENTS.barrierDuration.name, { 'db.system.name': system, 'txbarrier.trans_type': 'saga', 'txbarrier.op': 'action', 'txbarrier.outcome': 'duplicate' })]: 1,
        [entry(INSTRUMENTS.barrierDuration.name, { 'db.system.name': system, 'txbarrier.trans_type': 'saga', 'txbarrier.op': 'action', 'txbarrier.outcome': 'error', 'error.type': 'Error' })]: 2,
        [entry(INSTRUMENTS.barrierDuration.name, { 'db.system.name': system, 'txbarrier.trans_type': 'saga', 'txbarrier.op': 'action', 'txbarrier.outcome': 'failure', 'error.type': 'BarrierFailure' })]: 1,
      });
    });

    it('counts enqueued, published and parked messages, publish latency and errors, and failed relay rounds', async () => {
      const db = await openOutbox(engine as 'sqlite' | 'mysql' | 'postgres');
      try {
        const grown = await since();
        const ids: string[] = [];
        for (const payload of ['one', 'two', 'refused']) ids.push(await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'orders', payload, key: fresh('key') })));
        for (const id of ids) unbounded.add(id);
        const publisher: OutboxPublisher = {
          system: `test-${engine}`,
          publish: async (message) => {
            if (message.payload.toString() === 'refused') throw new TypeError('broker said no');
          },
        };
        const parked: unknown[] = [];
        const relay = createRelay(db.outbox, { publisher, retry: { maxAttempts: 1 }, onParked: (event) => parked.push(event) });
        expect(await relay.runOnce()).toBe(3);
        await relay.stop();
        expect(parked).toHaveLength(1);

        // A relay on a table that does not exist: every round fails as a whole.
        const missing = createOutbox(db.store, { table: `missing_${randomUUID().slice(0, 8)}` });
        const errors: unknown[] = [];
        const broken = createRelay(missing, { publisher, pollInterval: 10, onError: (error) => errors.push(error) });
        broken.start();
        await waitUntil('a failed round', async () => errors.length > 0);
        await broken.stop();

        const sent = { 'messaging.system': `test-${engine}`, 'messaging.operation.name': 'publish', 'messaging.operation.type': 'send' };
        const failed = { ...sent, 'error.type': 'TypeError' };
        const delta = await grown();
        expect(delta).toEqual({
          [entry(INSTRUMENTS.outboxEnqueued.name, { 'db.system.name': system })]: 3,
          [entry(INSTRUMENTS.sentMessages.name, sent)]: 2,
          [entry(INSTRUMENTS.sentMessages.name, failed)]: 1,
          [entry(INSTRUMENTS.sendDuration.name, sent)]: 2,
          [entry(INSTRUMENTS.sendDuration.name, failed)]: 1,
          [entry(INSTRUMENTS.outboxParked.name, { 'messaging.system': `test-${engine}` })]: 1,
          [entry(INSTRUMENTS.relayErrors.name, { 'db.system.name': system })]: errors.length,
        });
      } finally {
        await db.close();
      }
    });

    it('records idempotent requests by outcome and status: executed, replayed, 409, 422, 503', async () => {
      const idem = await openIdempotency(engine as 'sqlite' | 'mysql' | 'postgres');
      try {
        const guard = idempotencyGuard<unknown, { client: string }>(idem.store, { scope: (req) => req.client, table: idem.table });
        const client = { client: fresh('scope') };
        const request = (key: string, body = '{"amount":1}') => ({ method: 'POST', target: '/pay', key: `"${key}"`, body });
        const grown = await since();
        const key = fresh('key');
        expect((await guard.respond(request(key), client, (tx) => idem.record(tx, key).then(() => ({ status: 201 })))).status).toBe(201);
        expect((await guard.respond(request(key), client, () => ({ status: 500 }))).status).toBe(201);
        expect((await guard.respond(request(key, '{"amount":2}'), client, () => ({ status: 201 }))).status).toBe(422);
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        const slowKey = fresh('key');
        const first = guard.respond(request(slowKey), client, async () => {
          await held;
          return { status: 200 };
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect((await guard.respond(request(slowKey), client, () => ({ status: 200 }))).status).toBe(409);
        release();
        expect((await first).status).toBe(200);
        expect((await guard.respond(request(fresh('key')), client, () => Promise.reject(new BarrierOngoing('busy')))).status).toBe(503);

        const at = (outcome: string, status: number) => entry(INSTRUMENTS.idempotencyDuration.name, {
          'db.system.name': system,
          'http.request.method': 'POST',
          'http.response.status_code': status,
          'txbarrier.idempotency.outcome': outcome,
        });
        expect(await grown()).toEqual({ [at('executed', 201)]: 1, [at('replayed', 201)]: 1, [at('mismatch', 422)]: 1, [at('in-flight', 409)]: 1, [at('executed', 200)]: 1, [at('busy', 503)]: 1 });
      } finally {
        await idem.close();
      }
    });

    describe('table gauges', () => {
      let db: Awaited<ReturnType<typeof openOutbox>>;
      beforeAll(async () => {
        db = await openOutbox(engine as 'sqlite' | 'mysql' | 'postgres');
        for (let i = 0; i < 5; i++) await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'orders', payload: `m${i}` }));
        await db.query(`UPDATE ${db.outbox.table} SET status = 'parked' WHERE seq IN (SELECT seq FROM (SELECT seq FROM ${db.outbox.table} ORDER BY seq LIMIT 2) s)`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        for (let i = 0; i < 30; i++) await saga(fresh('gid'), 'action').call(db.store, () => undefined);
      });
      afterAll(() => db?.close());

      it('reads backlog, oldest pending age and barrier rows, counts bounded by countLimit', async () => {
        const reading = await tableMetrics({ store: db.store, outbox: db.outbox, cacheFor: 0 }).read();
        expect(reading.outbox).toMatchObject({ engine, table: db.outbox.table, pending: 3, parked: 2 });
        expect(reading.outbox!.oldestPendingAgeSeconds).toBeGreaterThan(0.04);
        expect(reading.outbox!.oldestPendingAgeSeconds).toBeLessThan(60);
        expect(reading.barrier).toMatchObject({ engine, table: db.store.table });
        // SQLite keeps no statistics: counted. A server may already have an estimate for the young table (InnoDB counts inserts).
        if (engine === 'sqlite' || !reading.barrier!.estimated) expect(reading.barrier).toMatchObject({ rows: 30, estimated: false });
        else expect(reading.barrier!.rows).toBeGreaterThanOrEqual(20);
        const capped = await tableMetrics({ store: db.store, outbox: db.outbox, countLimit: 2, cacheFor: 0 }).read();
        expect([capped.outbox!.pending, capped.outbox!.parked]).toEqual([2, 2]);
        if (!capped.barrier!.estimated) expect(capped.barrier!.rows).toBe(2);
      });

      // The servers keep statistics: once taken, the rows are the engine's estimate, not a count.
      if (engine !== 'sqlite') {
        it("takes the barrier rows from the engine's statistics once it has them", async () => {
          await db.query(engine === 'postgres' ? `ANALYZE ${db.store.table}` : `ANALYZE TABLE ${db.store.table}`);
          const reading = await tableMetrics({ store: db.store, cacheFor: 0, countLimit: 5 }).read();
          expect(reading.barrier!.estimated).toBe(true);
          expect(reading.barrier!.rows).toBeGreaterThan(5);
          expect(reading.barrier!.rows).toBeLessThan(100);
        });
      }

      it('reuses one reading for cacheFor', async () => {
        const gauges = tableMetrics({ outbox: db.outbox, cacheFor: '1h' });
        const first = await gauges.read();
        await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'late', payload: 'late' }));
        expect(await gauges.read()).toBe(first);
        expect((await tableMetrics({ outbox: db.outbox, cacheFor: 0 }).read()).outbox!.pending).toBe(first.outbox!.pending + 1);
        await db.query(`DELETE FROM ${db.outbox.table} WHERE topic = 'late'`);
      });

      it('reports them as OpenTelemetry observable gauges from one callback, until unregistered', async () => {
        const gauges = tableMetrics({ store: db.store, outbox: db.outbox, cacheFor: 0 });
        const stop = await gauges.observe();
        const table = { 'db.system.name': system, 'db.collection.name': db.outbox.table };
        const observed = (points: Point[]) => points.filter((p) => TABLE_GAUGE_NAMES.has(p.name) && [db.outbox.table, db.store.table].includes(String(p.attributes['db.collection.name'])));
        const points = observed(await collect());
        expect(points.map((p) => [p.name, p.attributes, p.name === TABLE_GAUGES.oldestPending.name ? p.value > 0 : p.value])).toEqual([
          [TABLE_GAUGES.backlog.name, { ...table, 'txbarrier.outbox.status': 'pending' }, 3],
          [TABLE_GAUGES.backlog.name, { ...table, 'txbarrier.outbox.status': 'parked' }, 2],
          [TABLE_GAUGES.oldestPending.name, table, true],
          [TABLE_GAUGES.barrierRows.name, { 'db.system.name': system, 'db.collection.name': db.store.table }, expect.any(Number)],
        ]);
        stop();
        // Unregistered: a new message is not read any more.
        await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'late', payload: 'unobserved' }));
        try {
          const pending = observed(await collect()).filter((p) => p.attributes['txbarrier.outbox.status'] === 'pending');
          expect(pending.map((p) => p.value)).not.toContain(4);
        } finally {
          await db.query(`DELETE FROM ${db.outbox.table} WHERE topic = 'late'`);
        }
      });

      it('answers /metrics in Prometheus text format, which a Prometheus parser reads', async () => {
        const gauges = tableMetrics({ store: db.store, outbox: db.outbox, cacheFor: 0 });
        const server = await serve((req, res) => void gauges.handler(req, res));
        try {
          const response = await fetch(`${server.url}/metrics`);
          expect(response.status).toBe(200);
          expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
          const families = parsePrometheusTextFormat(await response.text());
          const labels = { db_system_name: system, db_collection_name: db.outbox.table };
          expect(families).toEqual([
            {
              name: 'txbarrier_outbox_backlog',
              help: TABLE_GAUGES.backlog.description,
              type: 'GAUGE',
              metrics: [
                { labels: { ...labels, txbarrier_outbox_status: 'pending' }, value: '3' },
                { labels: { ...labels, txbarrier_outbox_status: 'parked' }, value: '2' },
              ],
            },
            { name: 'txbarrier_outbox_pending_oldest_age', help: TABLE_GAUGES.oldestPending.description, type: 'GAUGE', metrics: [{ labels, value: expect.stringMatching(/^\d+(\.\d+)?(e[-+]?\d+)?$/) }] },
            {
              name: 'txbarrier_barrier_rows',
              help: TABLE_GAUGES.barrierRows.description,
              type: 'GAUGE',
              metrics: [{ labels: { db_system_name: system, db_collection_name: db.store.table }, value: expect.stringMatching(/^\d+$/) }],
            },
          ]);
          // The web Request/Response form gives the same families.
          const answer = await gauges.fetch(new Request(`${server.url}/metrics`));
          expect([answer.status, answer.headers.get('content-type')]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8']);
          expect(parsePrometheusTextFormat(await answer.text()).map((f) => [f.name, f.metrics.length])).toEqual(families.map((f) => [f.name, f.metrics.length]));
          expect((await gauges.fetch(new Request(`${server.url}/metrics`, { method: 'DELETE' }))).status).toBe(405);
          expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
          const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
          expect([head.status, await head.text()]).toEqual([200, '']);
        } finally {
          await server.close();
        }
      });

      it('answers 503 when the tables cannot be read, and tells onError why', async () => {
        const errors: unknown[] = [];
        const missing = createOutbox(db.store, { table: `missing_${randomUUID().slice(0, 8)}` });
        const gauges = tableMetrics({ outbox: missing, onError: (error) => errors.push(error) });
        const server = await serve((req, res) => void gauges.handler(req, res));
        try {
          const response = await fetch(`${server.url}/metrics`);
          expect([response.status, await response.text()]).toEqual([503, 'txbarrier: reading the tables failed\n']);
          expect(errors).toHaveLength(1);
        } finally {
          await server.close();
        }
        // Without onError, a process warning.
        await expect(tableMetrics({ outbox: missing }).prometheus()).rejects.toBeDefined();
        const unheard = tableMetrics({ outbox: missing });
        const server2 = await serve((req, res) => void unheard.handler(req, res));
        try {
          expect((await fetch(`${server2.url}/metrics`)).status).toBe(503);
        } finally {
          await server2.close();
        }
        expect(takeWarnings(/TxbarrierMetricsWarning: txbarrier: reading the tables for metrics failed/)).toHaveLength(1);
      });
    });
  });
}

describe('metrics: options and costs', () => {
  it('refuses bad options with a typed error', () => {
    const store = { dialect: { name: 'sqlite' }, table: 'barrier' } as never;
    for (const options of [{}, { store, countLimit: 0 }, { store, countLimit: 1.5 }, { store, cacheFor: 'soon' }]) {
      expect(() => tableMetrics(options)).toThrow(BarrierConfigError);
    }
    expect(() => tableMetrics({})).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_OPTION' }));
  });

  it('records nothing without a meter provider, and picks up one registered later', async () => {
    const [, , open] = conflictEngines(`metrics_off_${randomUUID().slice(0, 6)}`)[0]!;
    const h = await open();
    const second = new TestReader();
    const later = new MeterProvider({ readers: [second] });
    try {
      metrics.disable();
      await Barrier.from({ transType: 'saga', gid: fresh('gid'), branchId: '01', op: 'action' }).call(h.store, () => undefined);
      await expect(tableMetrics({ store: h.store }).observe()).rejects.toMatchObject({ code: 'ERR_TXBARRIER_NO_METER_PROVIDER' });
      // A provider given to observe() needs no global one.
      const stop = await tableMetrics({ store: h.store, cacheFor: 0 }).observe(later);
      metrics.setGlobalMeterProvider(later);
      await Barrier.from({ transType: 'saga', gid: fresh('gid'), branchId: '01', op: 'action' }).call(h.store, () => undefined);
      const { resourceMetrics } = await second.collect();
      stop();
      const points = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).flatMap((m) => m.dataPoints.map((p) => [m.descriptor.name, typeof p.value === 'number' ? p.value : (p.value as { count: number }).count]));
      // Only the call made after the provider was registered; the barrier table holds both calls' rows.
      expect(points).toEqual([
        [TABLE_GAUGES.barrierRows.name, 2],
        [INSTRUMENTS.barrierDuration.name, 1],
      ]);
    } finally {
      metrics.disable();
      metrics.setGlobalMeterProvider(provider);
      await later.shutdown();
      await h.close();
    }
  });

  it('docs/observability.md lists every instrument with its kind and unit', () => {
    const docs = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
    for (const spec of [...Object.values(INSTRUMENTS), ...Object.values(TABLE_GAUGES)]) {
      expect(docs, spec.name).toContain(`| \`${spec.name}\` | ${spec.kind} | \`${spec.unit}\` |`);
    }
  });

  it('never puts a gid, message id, idempotency key or scope in an attribute', async () => {
    const values = (await collect()).flatMap((p) => Object.values(p.attributes).map(String));
    expect(unbounded.size).toBeGreaterThan(10);
    expect(values.filter((value) => unbounded.has(value) || [...unbounded].some((id) => value.includes(id)))).toEqual([]);
  });
});

async function serve(handle: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
