/**
 * Gauges only the tables know: the outbox's backlog and the age of its oldest pending message, the
 * barrier table's rows. Read on demand (an OpenTelemetry observable callback, a `/metrics` scrape),
 * at a bounded cost: every count stops at `countLimit` rows along an index, the oldest pending
 * message is one index seek, and the barrier rows come from the engine's statistics where it keeps
 * them (counting millions of rows per scrape would be the costliest query the service runs).
 * A reading is reused for `cacheFor`, however many scrapers and readers ask.
 */
import type { DialectName } from '../dialects/dialect.js';
import { parseDuration } from '../duration.js';
import { BarrierConfigError } from '../errors.js';
import type { Outbox } from '../messaging/outbox/outbox.js';
import type { BarrierConnection, BarrierStore } from '../transaction/store.js';
import { type BatchCallback, type InstrumentSpec, type OtelMeter, type OtelMeterProvider, registeredMeter } from './metrics.js';
import { DB_SYSTEM, otelLoaded } from './tracing.js';

export interface TableMetricsOptions {
  /** A store whose barrier table's rows are measured (its `table`). Defaults to none; give this, `outbox`, or both. */
  store?: BarrierStore<any>;
  /** An outbox whose backlog and oldest pending message are measured. Defaults to none. */
  outbox?: Outbox<any, BarrierStore<any>>;
  /** How long one reading is reused: ms or a duration such as `'30s'`; `0` reads on every request. Defaults to `'10s'`. */
  cacheFor?: number | string;
  /** Counts stop at this many rows (a backlog that large is the alert anyway), so a scrape stays cheap. Defaults to `100000`. */
  countLimit?: number;
  /** Called when reading the tables fails (the scrape answers 503, the gauges skip one collection). Defaults to a process warning. */
  onError?: (error: unknown) => void;
}

/** One reading of the tables. */
export interface TableReading {
  /** The outbox's gauges, when an outbox was given. */
  outbox?: {
    engine: DialectName;
    table: string;
    /** Messages not yet published, counting those waiting for a retry; at most `countLimit`. */
    pending: number;
    /** Messages given up on, waiting for a person; at most `countLimit`. */
    parked: number;
    /** Seconds since the oldest pending message was enqueued, by the database's clock; 0 when none is pending. */
    oldestPendingAgeSeconds: number;
  };
  /** The barrier table's gauges, when a store was given. */
  barrier?: {
    engine: DialectName;
    table: string;
    rows: number;
    /** True when `rows` is the engine's statistics estimate; false when counted (at most `countLimit`). */
    estimated: boolean;
  };
}

/** The shape of Node's `ServerResponse` the handler writes (Express's and Koa's `ctx.res`, Fastify's `reply.raw` too). */
export interface MetricsResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

export interface TableMetrics {
  /** Reads the tables, or hands out the reading made less than `cacheFor` ago. */
  read(): Promise<TableReading>;
  /** The reading in Prometheus' text exposition format (version 0.0.4). */
  prometheus(): Promise<string>;
  /**
   * Answers a GET (or HEAD) with `prometheus()` as `text/plain; version=0.0.4`; 405 to other
   * methods, 503 when the tables could not be read (and `onError` hears why). Mount it at `/metrics`.
   */
  handler(request: { method?: string }, response: MetricsResponse): Promise<void>;
  /** The same answer to a web `Request` (Hono, Bun, Deno, the dashboard's server). */
  fetch(request: { method: string }): Promise<Response>;
  /**
   * Registers the gauges as OpenTelemetry observable gauges, read from one batch callback on each
   * collection. Uses `meterProvider`, or the globally registered one (register it first: a gauge
   * registered before it would never be read). Resolves to a function that unregisters them.
   * Throws `BarrierConfigError` (`ERR_TXBARRIER_NO_METER_PROVIDER`) when there is no provider.
   */
  observe(meterProvider?: OtelMeterProvider): Promise<() => void>;
}

/** The gauges, as the docs list them; the Prometheus names are what OpenTelemetry's Prometheus exporter makes of them. */
export const TABLE_GAUGES = {
  backlog: { name: 'txbarrier.outbox.backlog', kind: 'gauge', unit: '{message}', description: 'Outbox messages by status (pending, parked), counted up to countLimit.' },
  oldestPending: { name: 'txbarrier.outbox.pending.oldest_age', kind: 'gauge', unit: 's', description: 'Age of the oldest pending outbox message; 0 when none is pending.' },
  barrierRows: { name: 'txbarrier.barrier.rows', kind: 'gauge', unit: '{row}', description: "Rows in the barrier table: the engine's estimate on PostgreSQL and MySQL, counted up to countLimit on SQLite." },
} satisfies Record<string, InstrumentSpec>;

/** Gauges of the barrier table and the outbox for OpenTelemetry and Prometheus; see `TableMetricsOptions`. */
export function tableMetrics(options: TableMetricsOptions): TableMetrics {
  const settings: TableMetricsOptions = options ?? {};
  const { store, outbox } = settings;
  if (!store && !outbox) throw new BarrierConfigError('tableMetrics: give a store, an outbox, or both', { code: 'ERR_TXBARRIER_OPTION' });
  const countLimit = settings.countLimit ?? 100_000;
  if (!Number.isInteger(countLimit) || countLimit < 1) {
    throw new BarrierConfigError(`tableMetrics: countLimit must be a positive integer; got ${countLimit}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  const cacheMs = parseDuration(settings.cacheFor ?? '10s', 'cacheFor');
  const onError = settings.onError ?? ((error: unknown) => process.emitWarning(`txbarrier: reading the tables for metrics failed: ${String(error)}`, 'TxbarrierMetricsWarning'));
  let cached: { at: number; reading: Promise<TableReading> } | undefined;

  const query = async (): Promise<TableReading> => {
    const reading: TableReading = {};
    if (outbox) {
      const { sql } = outbox;
      reading.outbox = await outbox.store.transaction(async (c) => ({
        engine: outbox.store.dialect.name,
        table: outbox.table,
        pending: numberOf(await c.select(sql.countUpTo(), ['pending', countLimit])),
        parked: numberOf(await c.select(sql.countUpTo(), ['parked', countLimit])),
        oldestPendingAgeSeconds: Math.max(0, numberOf(await c.select(sql.oldestPendingAge(), []), 'age')),
      }));
    }
    if (store) {
      const engine = store.dialect.name;
      const rows = await store.transaction((c) => barrierRows(c, store, countLimit));
      reading.barrier = { engine, table: store.table, ...rows };
    }
    return reading;
  };

  const read = () => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.reading;
    const entry = { at: Date.now(), reading: query() };
    cached = entry;
    // A failed reading is not reused: the next request tries again.
    entry.reading.catch(() => {
      if (cached === entry) cached = undefined;
    });
    return entry.reading;
  };

  /** What `/metrics` answers: the text to GET, headers only to HEAD, 405 to other methods, 503 when the tables cannot be read. */
  const answer = async (method: string): Promise<{ status: number; headers: Record<string, string>; body?: string }> => {
    if (method !== 'GET' && method !== 'HEAD') return { status: 405, headers: { Allow: 'GET, HEAD' } };
    let body: string;
    try {
      body = prometheusText(await read());
    } catch (error) {
      report(error);
      return { status: 503, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'txbarrier: reading the tables failed\n' };
    }
    return { status: 200, headers: { 'Content-Type': PROMETHEUS_CONTENT_TYPE }, ...(method === 'HEAD' ? {} : { body }) };
  };

  const report = (error: unknown) => {
    try {
      onError(error);
    } catch (hookError) {
      process.emitWarning(`txbarrier: the tableMetrics onError hook threw: ${String(hookError)}`, 'TxbarrierHookWarning');
    }
  };

  return {
    read,
    prometheus: async () => prometheusText(await read()),
    async handler(request, response) {
      const { status, headers, body } = await answer(request.method ?? 'GET');
      response.statusCode = status;
      for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
      response.end(body);
    },
    async fetch(request) {
      const { status, headers, body } = await answer(request.method);
      return new Response(body ?? null, { status, headers });
    },
    async observe(meterProvider) {
      const meter = meterProvider ? meterProvider.getMeter('txbarrier') : await globalMeter();
      const gauge = (spec: InstrumentSpec) => meter.createObservableGauge(spec.name, { unit: spec.unit, description: spec.description });
      const backlog = gauge(TABLE_GAUGES.backlog);
      const oldest = gauge(TABLE_GAUGES.oldestPending);
      const rows = gauge(TABLE_GAUGES.barrierRows);
      const observables = [backlog, oldest, rows];
      const callback: BatchCallback = async (result) => {
        let reading: TableReading;
        try {
          reading = await read();
        } catch (error) {
          report(error);
          return;
        }
        if (reading.outbox) {
          const at = tableAttributes(reading.outbox);
          result.observe(backlog, reading.outbox.pending, { ...at, 'txbarrier.outbox.status': 'pending' });
          result.observe(backlog, reading.outbox.parked, { ...at, 'txbarrier.outbox.status': 'parked' });
          result.observe(oldest, reading.outbox.oldestPendingAgeSeconds, at);
        }
        if (reading.barrier) result.observe(rows, reading.barrier.rows, tableAttributes(reading.barrier));
      };
      meter.addBatchObservableCallback(callback, observables);
      return () => meter.removeBatchObservableCallback(callback, observables);
    },
  };
}

async function globalMeter(): Promise<OtelMeter> {
  if ((await otelLoaded) === null) {
    throw new BarrierConfigError('tableMetrics.observe: @opentelemetry/api is not installed', { code: 'ERR_TXBARRIER_NO_METER_PROVIDER' });
  }
  const meter = registeredMeter();
  if (!meter) {
    throw new BarrierConfigError('tableMetrics.observe: no meter provider is registered: register one first (metrics.setGlobalMeterProvider) or pass it', {
      code: 'ERR_TXBARRIER_NO_METER_PROVIDER',
    });
  }
  return meter;
}

const tableAttributes = ({ engine, table }: { engine: DialectName; table: string }) => ({ 'db.system.name': DB_SYSTEM[engine], 'db.collection.name': table });

/** The first row's `column` as a number (drivers give counts and decimals as strings or bigints); 0 for no row. */
function numberOf(rows: Record<string, unknown>[], column = 'n'): number {
  if (rows.length === 0 || rows[0]![column] == null) return 0;
  const value = Number(rows[0]![column]);
  if (!Number.isFinite(value)) throw new BarrierConfigError(`a metrics query returned ${String(rows[0]![column])} for ${column}`, { code: 'ERR_TXBARRIER_DRIVER_RESULT' });
  return value;
}

/**
 * The barrier table's rows: the engine's estimate where it keeps one (PostgreSQL's `reltuples`, kept
 * by autovacuum and ANALYZE; InnoDB's `TABLE_ROWS`), else a count up to `limit` (SQLite, a table
 * never analysed).
 */
async function barrierRows(c: BarrierConnection<unknown>, store: BarrierStore<unknown>, limit: number): Promise<{ rows: number; estimated: boolean }> {
  const sql = store.dialect.stats(store.table, store.placeholder);
  // MySQL says NULL or 0 before its statistics are taken: count then, which is cheap for a table that young.
  const estimate = sql.estimate === undefined ? 0 : numberOf(await c.select(sql.estimate, []));
  if (estimate > 0) return { rows: estimate, estimated: true };
  return { rows: numberOf(await c.select(sql.countUpTo, [limit])), estimated: false };
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A reading in Prometheus' text format, with the names and labels OpenTelemetry's Prometheus exporter gives the same gauges. */
export function prometheusText(reading: TableReading): string {
  const out: string[] = [];
  const family = (spec: InstrumentSpec, samples: [Record<string, string>, number][]) => {
    if (samples.length === 0) return;
    const name = prometheusName(spec);
    out.push(`# HELP ${name} ${spec.description.replaceAll('\\', '\\\\')}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      const text = Object.entries(labels).map(([key, v]) => `${key.replaceAll('.', '_')}="${escapeLabel(v)}"`);
      out.push(`${name}{${text.join(',')}} ${value}`);
    }
  };
  const { outbox, barrier } = reading;
  if (outbox) {
    const at = tableAttributes(outbox);
    family(TABLE_GAUGES.backlog, [
      [{ ...at, 'txbarrier.outbox.status': 'pending' }, outbox.pending],
      [{ ...at, 'txbarrier.outbox.status': 'parked' }, outbox.parked],
    ]);
    family(TABLE_GAUGES.oldestPending, [[at, outbox.oldestPendingAgeSeconds]]);
  }
  if (barrier) family(TABLE_GAUGES.barrierRows, [[tableAttributes(barrier), barrier.rows]]);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** `txbarrier.outbox.pending.oldest_age` → `txbarrier_outbox_pending_oldest_age`: as OpenTelemetry's JS Prometheus exporter names it (no unit suffix). */
function prometheusName(spec: InstrumentSpec): string {
  return spec.name.replaceAll('.', '_');
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}
