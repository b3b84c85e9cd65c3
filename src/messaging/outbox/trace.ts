import type { OtelSpan } from '../../observe/tracing.js';

/**
 * The part of `@opentelemetry/api` the outbox uses: W3C trace context into and out of message
 * headers, and a producer span per publish. The package is an optional peer, loaded lazily as in
 * `tracing.ts`; without it, or before it has loaded, messages carry no trace context.
 */
interface OtelPropagationApi {
  context: { active(): unknown };
  propagation: {
    inject(context: unknown, carrier: Record<string, string>): void;
    extract(context: unknown, carrier: Record<string, string>): unknown;
  };
  trace: {
    getTracer(name: string): {
      startActiveSpan<T>(name: string, options: { kind: number; attributes?: Record<string, string | number> }, context: unknown, fn: (span: OtelSpan) => T): T;
    };
  };
}

/** `SpanKind.PRODUCER`. */
const SPAN_KIND_PRODUCER = 3;
const SPAN_STATUS_ERROR = 2;

let api: OtelPropagationApi | null | undefined;
void import('@opentelemetry/api').then(
  (module) => (api = module as unknown as OtelPropagationApi),
  () => (api = null),
);

/** The active span's trace context as headers (`traceparent`, `tracestate`), merged into `headers`. */
export function withTraceContext(headers: Record<string, string>): Record<string, string> {
  if (!api) return headers;
  const carrier = { ...headers };
  api.propagation.inject(api.context.active(), carrier);
  return carrier;
}

/**
 * Runs `publish` in a producer span whose parent is the trace context the message was enqueued
 * in; `publish` receives the headers to send, which carry this span's context on to the consumer.
 */
export async function inPublishSpan<T>(
  name: string,
  attributes: Record<string, string | number>,
  headers: Record<string, string>,
  publish: (headers: Record<string, string>) => Promise<T>,
): Promise<T> {
  const otel = api;
  if (!otel) return publish(headers);
  const parent = otel.propagation.extract(otel.context.active(), headers);
  return otel.trace.getTracer('txbarrier').startActiveSpan(name, { kind: SPAN_KIND_PRODUCER, attributes }, parent, async (span) => {
    try {
      if (!span.isRecording()) return await publish(headers);
      return await publish(withTraceContext(headers));
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SPAN_STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}
