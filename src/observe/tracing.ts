import type { DialectName } from '../dialects/dialect.js';

/** The part of `@opentelemetry/api` txbarrier uses (the package is an optional peer, never imported statically). */
export interface OtelApi {
  ROOT_CONTEXT: unknown;
  trace: { getTracer(name: string): OtelTracer; setSpan(context: unknown, span: OtelSpan): unknown };
  context: { active(): unknown; with<A extends unknown[], T>(context: unknown, fn: (...args: A) => T, thisArg?: unknown, ...args: A): T };
  propagation: {
    inject(context: unknown, carrier: Record<string, string>): void;
    extract(context: unknown, carrier: Record<string, string>): unknown;
  };
}

export interface OtelTracer {
  startSpan(name: string, options: { kind: number; attributes?: Record<string, string | number> }, context?: unknown): OtelSpan;
}

export interface OtelSpan {
  isRecording(): boolean;
  setAttribute(key: string, value: string): void;
  setAttributes(attributes: Record<string, string>): void;
  setStatus(status: { code: number; message?: string }): void;
  recordException(exception: unknown): void;
  end(): void;
}

/** `SpanKind.INTERNAL` and `SpanStatusCode.ERROR`: stable numbers, so the enums need not be imported. */
export const SPAN_KIND_INTERNAL = 0;
export const SPAN_STATUS_ERROR = 2;

/** Where barrier rows or keys can live: the SQL engines, and Redis (`txbarrier/redis`). */
export type DbSystem = DialectName | 'redis';

/** OpenTelemetry's `db.system.name` / `db.system` values for each engine. */
export const DB_SYSTEM: Record<DbSystem, string> = { mysql: 'mysql', postgres: 'postgresql', sqlite: 'sqlite', redis: 'redis' };

let tracer: OtelTracer | null | undefined;
let api: OtelApi | null | undefined;

// Imported once, as soon as txbarrier is, so it has settled by the first request: a barrier call
// must enter its transaction synchronously (the SQLite queue keeps call order), so it cannot wait
// for the import. A call made before it settles goes untraced. Without a registered tracer
// provider the API hands out no-op spans, so an installed but unused API costs next to nothing.
// The API's tracer is a proxy that finds a provider registered later, so one is enough.
// Every part of txbarrier that traces (barrier calls, idempotent routes, the outbox, consumers)
// reads the module from here: one import, settled at the same moment for all of them.
/** Resolves once the import has settled: to the module, or null when `@opentelemetry/api` is not installed. */
export const otelLoaded: Promise<OtelApi | null> = import('@opentelemetry/api').then(
  (module) => {
    api = module as unknown as OtelApi;
    tracer = api.trace.getTracer('txbarrier');
    return api;
  },
  () => (api = tracer = null),
);

/** txbarrier's tracer if `@opentelemetry/api` is installed and loaded, else null or undefined. */
export function otelTracer(): OtelTracer | null | undefined {
  return tracer;
}

/** The loaded `@opentelemetry/api` module, else null (not installed) or undefined (not loaded yet). */
export function otelModule(): OtelApi | null | undefined {
  return api;
}

/**
 * A span of txbarrier's tracer, started, if it records; else undefined, and nothing was started that
 * needs ending. With `@opentelemetry/api` installed but no SDK registered (or a sampler that drops
 * it), the span is a no-op: entering its context would copy the context and run the API's closures
 * (about 1 KB per call) for nothing, so callers enter it (`withActiveSpan`) only when it records.
 */
export function recordingSpan(name: string, options: { kind: number; attributes?: Record<string, string | number> }, context?: unknown): OtelSpan | undefined {
  if (!tracer) return undefined;
  const span = tracer.startSpan(name, options, context);
  return span.isRecording() ? span : undefined;
}

/** Runs `fn(span)` with `span` the active span (child of `parent`, by default the active context), so the driver's spans nest under it. */
export function withActiveSpan<T>(span: OtelSpan, fn: (span: OtelSpan) => T, parent?: unknown): T {
  const { context, trace } = api!;
  return context.with(trace.setSpan(parent ?? context.active(), span), fn, undefined, span);
}
