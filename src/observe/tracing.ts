import type { DialectName } from '../dialects/dialect.js';

/** The part of `@opentelemetry/api` the barrier uses (the package is an optional peer, never imported statically). */
export interface OtelApi {
  trace: { getTracer(name: string): OtelTracer };
}

export interface OtelTracer {
  startActiveSpan<T>(name: string, options: { kind: number }, fn: (span: OtelSpan) => T): T;
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
let api: unknown;

// Imported once, as soon as txbarrier is, so it has settled by the first request: a barrier call
// must enter its transaction synchronously (the SQLite queue keeps call order), so it cannot wait
// for the import. A call made before it settles goes untraced. Without a registered tracer
// provider the API hands out no-op spans, so an installed but unused API costs next to nothing.
// The API's tracer is a proxy that finds a provider registered later, so one is enough.
/** Resolves once the import has settled: to the module, or null when `@opentelemetry/api` is not installed. */
export const otelLoaded: Promise<unknown> = import('@opentelemetry/api').then(
  (module) => {
    tracer = (module as unknown as OtelApi).trace.getTracer('txbarrier');
    return (api = module);
  },
  () => (api = tracer = null),
);

/** txbarrier's tracer if `@opentelemetry/api` is installed and loaded, else null or undefined. */
export function otelTracer(): OtelTracer | null | undefined {
  return tracer;
}

/** The loaded `@opentelemetry/api` module (`metrics.ts` reads its meter provider), else null or undefined. */
export function otelModule(): unknown {
  return api;
}
