/** OpenTelemetry set up for the consumer tests: a W3C propagator, a tracer recording in memory, and a context manager. */
import { type Context, type ContextManager, context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll } from 'vitest';

/** Registers the globals for the enclosing `describe`; `of(traceId)` lists that trace's spans as [name, outcome, parent span id]. */
export function tracingFromHeaders(): { of(traceId: string): [string, unknown, string | undefined][] } {
  const exporter = new InMemorySpanExporter();
  beforeAll(() => {
    context.setGlobalContextManager(new SynchronousContextManager());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  });
  afterAll(() => {
    trace.disable();
    propagation.disable();
    context.disable();
  });
  return {
    of: (traceId) =>
      exporter
        .getFinishedSpans()
        .filter((span) => span.spanContext().traceId === traceId)
        .map((span) => [span.name, span.attributes['txbarrier.outcome'], span.parentSpanContext?.spanId]),
  };
}

/** Enough of a context manager for a span started synchronously inside `with` (the barrier's is). */
class SynchronousContextManager implements ContextManager {
  #current: Context = ROOT_CONTEXT;
  active = () => this.#current;
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A) {
    const previous = this.#current;
    this.#current = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#current = previous;
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable = () => this;
  disable = () => {
    this.#current = ROOT_CONTEXT;
    return this;
  };
}
