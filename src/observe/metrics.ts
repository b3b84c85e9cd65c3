/**
 * OpenTelemetry metrics through `@opentelemetry/api` (an optional peer, loaded by `tracing.ts`).
 *
 * The API has no proxy for meters: a meter taken before a provider is registered stays a no-op
 * for good. So the instruments are made from whichever provider is registered when something is
 * recorded, and made again when that provider changes. With no provider (the API's no-op one) a
 * recording site gets `undefined` and pays one property read on the API's global: no clock read,
 * no attributes object, no instrument.
 *
 * Every attribute value comes from a small, fixed set (engine, trans type, op, outcome, a consumer's
 * configured name, an error's class): never a gid, message id, key or scope, which would make a
 * time series per request.
 */
import type { DialectName } from '../dialects/dialect.js';
import { DB_SYSTEM, type DbSystem, otelModule } from './tracing.js';

type Attributes = Record<string, string | number>;

/** The part of `@opentelemetry/api`'s `Meter` txbarrier uses. */
export interface OtelMeter {
  createCounter(name: string, options: InstrumentOptions): { add(value: number, attributes?: Attributes): void };
  createHistogram(name: string, options: InstrumentOptions): { record(value: number, attributes?: Attributes): void };
  createObservableGauge(name: string, options: InstrumentOptions): object;
  addBatchObservableCallback(callback: BatchCallback, observables: object[]): void;
  removeBatchObservableCallback(callback: BatchCallback, observables: object[]): void;
}

/** What a batch callback is given: one `observe` for all the gauges it registered. */
export type BatchCallback = (result: { observe(observable: object, value: number, attributes?: Attributes): void }) => void | Promise<void>;

/** A `MeterProvider` as `@opentelemetry/sdk-metrics` makes one. */
export interface OtelMeterProvider {
  getMeter(name: string): OtelMeter;
}

interface OtelMetricsApi {
  metrics: { getMeterProvider(): OtelMeterProvider };
  createNoopMeter(): OtelMeter;
}

interface InstrumentOptions {
  unit: string;
  description: string;
  advice?: { explicitBucketBoundaries: number[] };
}

/** One instrument as the docs list it. */
export interface InstrumentSpec {
  name: string;
  kind: 'counter' | 'histogram' | 'gauge';
  unit: string;
  description: string;
}

/** OpenTelemetry's advised boundaries for a duration in seconds (as for `http.server.request.duration`). */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

const counter = (name: string, unit: string, description: string) => ({ name, kind: 'counter', unit, description }) as const;
const histogram = (name: string, description: string) => ({ name, kind: 'histogram', unit: 's', description }) as const;

/** Every instrument recorded in process. The table gauges are in `tables.ts`. */
export const INSTRUMENTS = {
  barrierDuration: histogram('txbarrier.barrier.call.duration', 'Duration of barrier calls (call and within), by outcome.'),
  barrierConflicts: counter('txbarrier.barrier.conflicts', '{conflict}', 'Barrier calls that failed on a database conflict (deadlock, serialization failure, lock wait timeout, busy file).'),
  barrierTimeouts: counter('txbarrier.barrier.timeouts', '{timeout}', "Barrier calls whose function outlived the store's transactionTimeout."),
  outboxEnqueued: counter('txbarrier.outbox.enqueued', '{message}', "Messages written into an outbox in a business transaction (counted before that transaction's end)."),
  sentMessages: counter('messaging.client.sent.messages', '{message}', 'Publishes the outbox relay attempted; failed ones carry error.type.'),
  sendDuration: histogram('messaging.client.operation.duration', 'Duration of the outbox relay publishes, until the broker confirmed or failed.'),
  outboxParked: counter('txbarrier.outbox.parked', '{message}', 'Messages the relay gave up on after their last attempt.'),
  relayErrors: counter('txbarrier.outbox.relay.errors', '{error}', 'Relay rounds that failed as a whole (database unreachable, deadlock).'),
  consumerDuration: histogram('txbarrier.consumer.process.duration', 'Duration of consumer deliveries, from receipt to settlement, by settlement.'),
  consumerRetries: counter('txbarrier.consumer.retries', '{message}', 'Deliveries rolled back and scheduled for another delivery.'),
  consumerDeadLetters: counter('txbarrier.consumer.dead_letters', '{message}', 'Messages dead-lettered, by reason.'),
  idempotencyDuration: histogram('txbarrier.idempotency.request.duration', 'Duration of idempotent requests, by outcome and status.'),
} satisfies Record<string, InstrumentSpec>;

type Instruments = {
  [K in keyof typeof INSTRUMENTS]: (typeof INSTRUMENTS)[K]['kind'] extends 'counter'
    ? ReturnType<OtelMeter['createCounter']>
    : ReturnType<OtelMeter['createHistogram']>;
};

let provider: OtelMeterProvider | undefined;
let instruments: Instruments | undefined;

/** The instruments of the registered meter provider; `undefined` without one (or without the API). */
function current(): Instruments | undefined {
  const api = otelModule() as OtelMetricsApi | null | undefined;
  if (!api) return undefined;
  const registered = api.metrics.getMeterProvider();
  if (registered !== provider) {
    provider = registered;
    const meter = meterOf(api, registered);
    instruments = meter && create(meter);
  }
  return instruments;
}

/** txbarrier's meter from the globally registered provider; `undefined` without the API or with only its no-op provider. */
export function registeredMeter(): OtelMeter | undefined {
  const api = otelModule() as OtelMetricsApi | null | undefined;
  return api ? meterOf(api, api.metrics.getMeterProvider()) : undefined;
}

function meterOf(api: OtelMetricsApi, registered: OtelMeterProvider): OtelMeter | undefined {
  const meter = registered.getMeter('txbarrier');
  // The no-op provider hands out the API's one no-op meter.
  return meter === api.createNoopMeter() ? undefined : meter;
}

function create(meter: OtelMeter): Instruments {
  const made: Record<string, unknown> = {};
  for (const [field, spec] of Object.entries(INSTRUMENTS)) {
    const options = { unit: spec.unit, description: spec.description };
    made[field] = spec.kind === 'counter' ? meter.createCounter(spec.name, options) : meter.createHistogram(spec.name, { ...options, advice: { explicitBucketBoundaries: SECONDS } });
  }
  return made as Instruments;
}

/** Whether a meter provider is registered, so a recording site knows to read the clock. */
export function metricsOn(): boolean {
  return current() !== undefined;
}

/** `error.type`: the error's class name, as OpenTelemetry's conventions ask. */
function errorType(error: unknown): string {
  return error instanceof Error ? error.name : '_OTHER';
}

/** One finished barrier call. `problem` says whether it was a database conflict or a transaction timeout. */
export function recordBarrierCall(
  engine: DbSystem,
  call: { transType: string; op: string },
  outcome: string,
  durationMs: number,
  error: unknown,
  problem: 'conflict' | 'timeout' | undefined,
): void {
  const m = current();
  if (!m) return;
  // Separate objects: the SDK keeps the attributes it is given, so one must not change after a recording.
  const base: Attributes = { 'db.system.name': DB_SYSTEM[engine], 'txbarrier.trans_type': call.transType, 'txbarrier.op': call.op };
  if (problem === 'conflict') m.barrierConflicts.add(1, base);
  if (problem === 'timeout') m.barrierTimeouts.add(1, base);
  const attributes: Attributes = { ...base, 'txbarrier.outcome': outcome };
  if (error !== undefined) attributes['error.type'] = errorType(error);
  m.barrierDuration.record(durationMs / 1000, attributes);
}

const ENQUEUED: Record<DialectName, Attributes> = {
  mysql: { 'db.system.name': DB_SYSTEM.mysql },
  postgres: { 'db.system.name': DB_SYSTEM.postgres },
  sqlite: { 'db.system.name': DB_SYSTEM.sqlite },
};

/** One message written into an outbox. */
export function recordEnqueued(engine: DialectName): void {
  current()?.outboxEnqueued.add(1, ENQUEUED[engine]);
}

/** The publishes of one relay round, once their outcomes are recorded in the outbox. */
export function recordPublishes(system: string, outcomes: readonly { durationMs: number; error?: unknown; retryInMs?: number }[]): void {
  const m = current();
  if (!m) return;
  for (const { durationMs, error, retryInMs } of outcomes) {
    const attributes: Attributes = { 'messaging.system': system, 'messaging.operation.name': 'publish', 'messaging.operation.type': 'send' };
    if (error !== undefined) attributes['error.type'] = errorType(error);
    m.sentMessages.add(1, attributes);
    m.sendDuration.record(durationMs / 1000, attributes);
    if (error !== undefined && retryInMs === undefined) m.outboxParked.add(1, { 'messaging.system': system });
  }
}

/** A relay round that failed as a whole. */
export function recordRelayError(engine: DialectName): void {
  current()?.relayErrors.add(1, ENQUEUED[engine]);
}

/** One settled delivery of a consumer. */
export function recordSettlement(event: { consumer: string; settlement: string; reason?: string; durationMs: number; error?: unknown }): void {
  const m = current();
  if (!m) return;
  const consumer = { 'txbarrier.consumer': event.consumer };
  const attributes: Attributes = { ...consumer, 'txbarrier.settlement': event.settlement };
  if (event.error !== undefined) attributes['error.type'] = errorType(event.error);
  m.consumerDuration.record(event.durationMs / 1000, attributes);
  if (event.settlement === 'retry') m.consumerRetries.add(1, consumer);
  if (event.settlement === 'dead-letter') m.consumerDeadLetters.add(1, { ...consumer, 'txbarrier.dead_letter.reason': event.reason ?? 'attempts' });
}

// OpenTelemetry's known HTTP methods; any other is `_OTHER`, so a client cannot make new series.
const METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE']);

/** One answered (or failed) idempotent request. */
export function recordIdempotency(engine: DialectName, event: { method: string; outcome: string; status?: number; durationMs: number; error?: unknown }): void {
  const m = current();
  if (!m) return;
  const method = event.method.toUpperCase();
  const attributes: Attributes = {
    'db.system.name': DB_SYSTEM[engine],
    'http.request.method': METHODS.has(method) ? method : '_OTHER',
    'txbarrier.idempotency.outcome': event.outcome,
  };
  if (event.status !== undefined) attributes['http.response.status_code'] = event.status;
  if (event.outcome === 'error') attributes['error.type'] = errorType(event.error);
  m.idempotencyDuration.record(event.durationMs / 1000, attributes);
}
