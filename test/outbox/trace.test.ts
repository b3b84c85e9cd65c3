/**
 * W3C trace context from the span that enqueued a message, through the relay's producer span, into
 * the headers the broker delivers.
 */
import {
  context,
  propagation,
  SpanKind,
  type TextMapPropagator,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay } from '../../src/messaging/outbox/index.js';
import { AsyncLocalContextManager } from '../observe/otel.js';
import { BROKERS, type BrokerHarness, type EngineHarness, openEngine } from './harness.js';
import { waitUntil } from '../support/server-harness.js';

/** `traceparent` only: enough W3C trace context to follow a span across the broker. */
const traceparent: TextMapPropagator = {
  inject(ctx, carrier: Record<string, string>) {
    const span = trace.getSpanContext(ctx);
    if (span) carrier.traceparent = `00-${span.traceId}-${span.spanId}-0${span.traceFlags}`;
  },
  extract(ctx, carrier: Record<string, string>) {
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0(\d)$/.exec(carrier.traceparent ?? '');
    if (!match) return ctx;
    return trace.setSpanContext(ctx, { traceId: match[1]!, spanId: match[2]!, traceFlags: Number(match[3]) as TraceFlags, isRemote: true });
  },
  fields: () => ['traceparent'],
};

const amqp = BROKERS.find((b) => b.name === 'amqp')!;

describe.skipIf(amqp.skip)('outbox trace context', () => {
  const exporter = new InMemorySpanExporter();
  let db: EngineHarness;
  let mq: BrokerHarness;
  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalContextManager());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    propagation.setGlobalPropagator(traceparent);
    db = await openEngine('sqlite');
    mq = await amqp.open();
    // The outbox loads the API lazily; let that import settle.
    await new Promise((resolve) => setTimeout(resolve, 50));
  });
  afterAll(async () => {
    await mq?.close();
    await db?.close();
  });

  it('carries the enqueuing span into a producer span, and that span into the message headers', async () => {
    const topic = mq.topic('traced');
    await mq.accept(topic);
    const tracer = trace.getTracer('test');
    const { id, checkout } = await tracer.startActiveSpan('checkout', async (span) => {
      const enqueued = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic, payload: 'traced' }));
      span.end();
      return { id: enqueued, checkout: span.spanContext() };
    });
    const [stored] = await db.query(`SELECT headers FROM ${db.outbox.table} WHERE id = ?`, [id]);
    expect(JSON.parse(String(stored!.headers)).traceparent).toBe(`00-${checkout.traceId}-${checkout.spanId}-01`);

    const relay = createRelay(db.outbox, { publisher: mq.publisher() });
    await relay.runOnce();
    await relay.stop();
    const publish = exporter.getFinishedSpans().find((s) => s.name === `${topic} publish`)!;
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.spanContext().traceId).toBe(checkout.traceId);
    expect(publish.parentSpanContext?.spanId).toBe(checkout.spanId);
    expect(publish.attributes).toMatchObject({ 'messaging.system': 'rabbitmq', 'messaging.destination.name': topic, 'messaging.message.id': id });

    await waitUntil('it arrived', async () => (await mq.received()).some((m) => m.id === id));
    const received = (await mq.received()).find((m) => m.id === id)!;
    expect(received.headers.traceparent).toBe(`00-${checkout.traceId}-${publish.spanContext().spanId}-01`);
  });
});
