import { AsyncLocalStorage } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { type Context, type ContextManager, context, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, BarrierFailure, type Logger, type OutcomeEvent, type StoreOptions } from '../../src/index.js';
import { AsyncLocalContextManager } from './otel.js';
import { type Db, openTempDb } from '../stores/sqlite-harness.js';

const saga = (gid: string, op: 'action' | 'compensate') => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
const gidOf = () => `observe-${randomUUID()}`;

let db: Db;
let cleanup: () => void;
beforeAll(() => {
  const opened = openTempDb();
  db = opened.db;
  cleanup = () => db.close();
});
afterAll(() => cleanup());

async function storeWith(options: StoreOptions) {
  const store = sqliteStore(db, options);
  await store.ensureSchema();
  return store;
}

/** A pino-shaped logger that remembers what it was given. */
function recordingLogger() {
  const lines: { level: string; object: Record<string, unknown>; message?: string }[] = [];
  const at = (level: string) => (object: unknown, message?: string) => lines.push({ level, object: object as Record<string, unknown>, message });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

describe('hooks and logger', () => {
  it('logs one line per call at a level that says how alarming it is', async () => {
    const { logger, lines } = recordingLogger();
    const store = await storeWith({ logger });
    const gid = gidOf();
    const boom = new Error('broken');
    await saga(gid, 'compensate').call(store, () => 'unused');
    await saga(gid, 'action').call(store, () => 'unused');
    await saga(gidOf(), 'action').call(store, () => 'applied');
    await expect(saga(gidOf(), 'action').call(store, () => Promise.reject(boom))).rejects.toBe(boom);
    expect(lines.map((l) => [l.level, l.message])).toEqual([
      ['info', 'txbarrier null-compensation'],
      ['warn', 'txbarrier dangling'],
      ['debug', 'txbarrier applied'],
      ['error', 'txbarrier error'],
    ]);
    expect(lines[1]!.object).toMatchObject({ gid, branchId: '01', op: 'action', transType: 'saga', outcome: 'dangling' });
    expect(lines[3]!.object.err).toBe(boom);
    expect(lines[0]!.object).not.toHaveProperty('err');
  });

  it('calls onDangling for dangling actions only, after onOutcome', async () => {
    const calls: string[] = [];
    const dangling: OutcomeEvent[] = [];
    const store = await storeWith({
      onOutcome: (e) => calls.push(`outcome:${e.outcome}`),
      onDangling: (e) => {
        calls.push('dangling');
        dangling.push(e);
      },
    });
    const gid = gidOf();
    await saga(gid, 'compensate').call(store, () => 'unused');
    await saga(gid, 'action').call(store, () => 'unused');
    await saga(gid, 'action').call(store, () => 'unused');
    await saga(gidOf(), 'action').call(store, () => 'ok');
    expect(calls).toEqual(['outcome:null-compensation', 'outcome:dangling', 'dangling', 'outcome:dangling', 'dangling', 'outcome:applied']);
    expect(dangling.map((e) => [e.gid, e.op, e.barrierId])).toEqual([
      [gid, 'action', '01'],
      [gid, 'action', '01'],
    ]);
    expect(dangling[0]!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('keeps a throwing hook away from the caller: its error goes to the logger', async () => {
    const { logger, lines } = recordingLogger();
    const hookError = new Error('metrics down');
    const store = await storeWith({
      logger,
      onOutcome: () => {
        throw hookError;
      },
      onDangling: () => {
        throw hookError;
      },
    });
    const gid = gidOf();
    await saga(gid, 'compensate').call(store, () => 'unused');
    expect(await saga(gid, 'action').call(store, () => 'unused')).toEqual({ outcome: 'dangling' });
    const hookLines = lines.filter((l) => l.object.err === hookError);
    expect(hookLines.map((l) => [l.level, l.message])).toEqual([
      ['error', 'txbarrier: onOutcome hook threw'],
      ['error', 'txbarrier: onOutcome hook threw'],
      ['error', 'txbarrier: onDangling hook threw'],
    ]);
  });

  it('turns a throwing hook into a process warning when there is no logger', async () => {
    const warnings: Error[] = [];
    const listener = (warning: Error) => warnings.push(warning);
    process.on('warning', listener);
    try {
      const store = await storeWith({
        onOutcome: () => {
          throw new Error('hook bug');
        },
      });
      expect((await saga(gidOf(), 'action').call(store, () => 'ok')).outcome).toBe('applied');
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings.map((w) => [w.name, w.message])).toEqual([['TxbarrierHookWarning', 'txbarrier: onOutcome hook threw: Error: hook bug']]);
  });

  it('keeps a throwing logger away from the caller: the committed result stands, a warning says why', async () => {
    const warnings: Error[] = [];
    const listener = (warning: Error) => warnings.push(warning);
    process.on('warning', listener);
    const broken = () => {
      throw new Error('log transport down');
    };
    const gid = gidOf();
    try {
      const store = await storeWith({ logger: { debug: broken, error: broken } });
      expect(await saga(gid, 'action').call(store, () => 'kept')).toEqual({ outcome: 'applied', value: 'kept' });
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    expect(warnings.map((w) => w.message)).toEqual(['txbarrier: the logger threw: Error: log transport down']);
    expect(db.prepare('SELECT COUNT(*) AS n FROM barrier WHERE gid = ?').get(gid)).toEqual({ n: 1 });
  });

  it('prints nothing without a logger', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) => vi.spyOn(console, method));
    const writes = [vi.spyOn(process.stdout, 'write'), vi.spyOn(process.stderr, 'write')];
    try {
      const store = await storeWith({});
      const gid = gidOf();
      await saga(gid, 'compensate').call(store, () => 'unused');
      await saga(gid, 'action').call(store, () => 'unused');
      await expect(saga(gidOf(), 'action').call(store, () => Promise.reject(new Error('x')))).rejects.toThrow('x');
      for (const spy of [...spies, ...writes]) expect(spy).not.toHaveBeenCalled();
    } finally {
      for (const spy of [...spies, ...writes]) spy.mockRestore();
    }
  });
});

describe('OpenTelemetry spans', () => {
  const exporter = new InMemorySpanExporter();
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalContextManager());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  });
  afterAll(() => {
    trace.disable();
    context.disable();
  });

  it('wraps each call in one span with database and barrier attributes, the work nested inside', async () => {
    exporter.reset();
    const store = await storeWith({ table: 'observe_barrier' });
    const gid = gidOf();
    let activeInside: string | undefined;
    const outcome = await saga(gid, 'action').call(store, () => {
      activeInside = trace.getActiveSpan()?.spanContext().spanId;
      // What a driver's instrumentation does for each statement.
      trace.getTracer('driver').startActiveSpan('INSERT ledger', (child) => child.end());
      return 'done';
    });
    expect(outcome).toEqual({ outcome: 'applied', value: 'done' });

    const spans = exporter.getFinishedSpans();
    const barrierSpan = spans.find((s) => s.name === 'txbarrier saga action')!;
    const child = spans.find((s) => s.name === 'INSERT ledger')!;
    expect(barrierSpan).toBeDefined();
    expect(barrierSpan.attributes).toEqual({
      'db.system.name': 'sqlite',
      'db.system': 'sqlite',
      'db.collection.name': 'observe_barrier',
      'txbarrier.trans_type': 'saga',
      'txbarrier.gid': gid,
      'txbarrier.branch_id': '01',
      'txbarrier.op': 'action',
      'txbarrier.barrier_id': '01',
      'txbarrier.outcome': 'applied',
      'txbarrier.committed': 'true',
    });
    expect(barrierSpan.status.code).toBe(SpanStatusCode.UNSET);
    expect(activeInside).toBe(barrierSpan.spanContext().spanId);
    // Parentage is the proof of nesting; end times are not, since the SDK anchors each span's clock separately.
    expect(child.parentSpanContext?.spanId).toBe(barrierSpan.spanContext().spanId);
  });

  it('records the outcome of suppressed calls and marks failures as errors', async () => {
    exporter.reset();
    const store = await storeWith({});
    const gid = gidOf();
    const failure = new BarrierFailure('insufficient funds');
    await saga(gid, 'compensate').call(store, () => 'unused');
    await saga(gid, 'action').call(store, () => 'unused');
    await expect(saga(gidOf(), 'action').call(store, () => Promise.reject(failure))).rejects.toBe(failure);

    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => [s.name, s.attributes['txbarrier.outcome'], s.status.code])).toEqual([
      ['txbarrier saga compensate', 'null-compensation', SpanStatusCode.UNSET],
      ['txbarrier saga action', 'dangling', SpanStatusCode.UNSET],
      ['txbarrier saga action', 'failure', SpanStatusCode.ERROR],
    ]);
    expect(spans[2]!.status.message).toBe('insufficient funds');
    expect(spans[2]!.attributes['error.type']).toBe('BarrierFailure');
    expect(spans[2]!.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('runs without @opentelemetry/api installed', () => {
    // A child process in which resolving the package fails, as it does when it is not installed.
    const hook = `export async function resolve(specifier, context, next) {
      if (specifier === '@opentelemetry/api') throw Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' });
      return next(specifier, context);
    }`;
    const script = `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
      const { default: Database } = await import('better-sqlite3');
      const { sqliteStore } = await import('./adapters/stores/sqlite.ts');
      const { Barrier } = await import('./src/index.ts');
      const store = sqliteStore(new Database(':memory:'));
      await store.ensureSchema();
      const barrier = Barrier.from({ transType: 'saga', gid: 'g', branchId: '01', op: 'action' });
      const first = await barrier.call(store, () => 'ran');
      let otel = 'importable';
      await import('@opentelemetry/api').catch(() => (otel = 'missing'));
      console.log(JSON.stringify({ outcome: first.outcome, otel }));
    `;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url).pathname,
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ outcome: 'applied', otel: 'missing' });
  });
});
