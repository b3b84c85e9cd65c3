import type { DialectName } from './dialects/dialect.js';

/** The part of `@opentelemetry/api` the barrier uses (the package is an optional peer, never imported statically). */
export interface OtelApi {
  trace: { getTracer(name: string): OtelTracer };
}

interface OtelTracer {
  startActiveSpan<T>(name: string, options: { kind: number; attributes: Record<string, string> }, fn: (span: OtelSpan) => T): T;
}

export interface OtelSpan {
  isRecording(): boolean;
  setAttribute(key: string, value: string): void;
  setStatus(status: { code: number; message?: string }): void;
  recordException(exception: unknown): void;
  end(): void;
}

/** `SpanKind.INTERNAL` and `SpanStatusCode.ERROR`: stable numbers, so the enums need not be imported. */
export const SPAN_KIND_INTERNAL = 0;
export const SPAN_STATUS_ERROR = 2;

/** OpenTelemetry's `db.system.name` / `db.system` values for each engine. */
export const DB_SYSTEM: Record<DialectName, string> = { mysql: 'mysql', postgres: 'postgresql', sqlite: 'sqlite' };

let api: OtelApi | null | undefined;

// Imported once, as soon as txbarrier is, so it has settled by the first request: a barrier call
// must enter its transaction synchronously (the SQLite queue keeps call order), so it cannot wait
// for the import. A call made before it settles goes untraced. Without a registered tracer
// provider the API hands out no-op spans, so an installed but unused API costs next to nothing.
void import('@opentelemetry/api').then(
  (module) => (api = module as unknown as OtelApi),
  () => (api = null),
);

/** `@opentelemetry/api` if it is installed and loaded, else null or undefined. */
export function otelApi(): OtelApi | null | undefined {
  return api;
}
