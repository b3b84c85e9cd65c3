import { otelModule, recordingSpan, SPAN_STATUS_ERROR, withActiveSpan } from '../../observe/tracing.js';

/*
 * The outbox's tracing: W3C trace context into and out of message headers, and a producer span per
 * publish, through `@opentelemetry/api` as `tracing.ts` loads it (an optional peer); without it, or
 * before it has loaded, messages carry no trace context.
 */

/** `SpanKind.PRODUCER`. */
const SPAN_KIND_PRODUCER = 3;

/** The active span's trace context as headers (`traceparent`, `tracestate`), merged into `headers`. */
export function withTraceContext(headers: Record<string, string>): Record<string, string> {
  const api = otelModule();
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
  const otel = otelModule();
  if (!otel) return publish(headers);
  const parent = otel.propagation.extract(otel.context.active(), headers);
  const span = recordingSpan(name, { kind: SPAN_KIND_PRODUCER, attributes }, parent);
  if (!span) return publish(headers);
  return withActiveSpan(
    span,
    async () => {
      try {
        return await publish(withTraceContext(headers));
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SPAN_STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
        throw error;
      } finally {
        span.end();
      }
    },
    parent,
  );
}
