import type { DialectName } from '../dialects/dialect.js';
import type { Logger } from '../observe/hooks.js';
import { metricsOn, recordIdempotency } from '../observe/metrics.js';
import { DB_SYSTEM, recordingSpan, SPAN_KIND_INTERNAL, SPAN_STATUS_ERROR, withActiveSpan } from '../observe/tracing.js';

/**
 * What an idempotent route did with one request. `executed`: the handler ran and its response was
 * stored with the work; `replayed`: a completed request's response was sent again, nothing ran;
 * `in-flight`: 409, the key's first request is still running; `mismatch`: 422, the key came with
 * a different request; `missing-key` / `invalid-key`: 400; `body-too-large`: 413, the body was over
 * `maxBodyBytes`; `not-stored`: the handler answered 5xx, which rolled its work back and stored
 * nothing; `busy`: 503, the database was busy (`BarrierOngoing` or a conflict), so the work rolled
 * back and nothing was stored; `unkeyed`: no key on a route that does not require one, so the
 * handler ran unguarded; `error`: the handler or the database threw.
 */
export type IdempotencyOutcome =
  | 'executed'
  | 'replayed'
  | 'in-flight'
  | 'mismatch'
  | 'missing-key'
  | 'invalid-key'
  | 'body-too-large'
  | 'not-stored'
  | 'busy'
  | 'unkeyed'
  | 'error';

/** One answered (or failed) request of an idempotent route. */
export interface IdempotencyEvent {
  outcome: IdempotencyOutcome;
  method: string;
  /** The request target: path and query. */
  target: string;
  /** The client's scope, once known (not for a request refused before it was read). */
  scope?: string;
  key?: string;
  /** The status sent; absent for `error`. */
  status?: number;
  durationMs: number;
  /** For `error`: what was thrown; for `busy`: the conflict the 503 stands for. */
  error?: unknown;
}

export interface IdempotencyHooks {
  /** Called once per request, after its transaction has ended. Count replays and conflicts here. Must not throw. */
  onOutcome?: (event: IdempotencyEvent) => void;
  /** Receives one line per request: `busy` at `warn`; `in-flight`, `mismatch`, keys and bodies refused at `info`; `error` at `error`; the rest at `debug`. */
  logger?: Logger;
}

const LEVEL: Record<IdempotencyOutcome, keyof Logger> = {
  executed: 'debug',
  replayed: 'debug',
  unkeyed: 'debug',
  'not-stored': 'info',
  'in-flight': 'info',
  mismatch: 'info',
  'missing-key': 'info',
  'invalid-key': 'info',
  'body-too-large': 'info',
  busy: 'warn',
  error: 'error',
};

/** The request as the hooks and the span see it. */
export interface ObservedRequest {
  method: string;
  target: string;
}

/** Where the route's keys live, for the span's database attributes. */
export interface ObservedTable {
  readonly engine: DialectName;
  readonly table: string;
}

/** The fields an answer adds to its event. */
export interface Observed {
  outcome: IdempotencyOutcome;
  status: number;
  scope?: string;
  key?: string;
  error?: unknown;
}

/**
 * Times `run` and reports its outcome to the hooks; with `@opentelemetry/api` installed `run`
 * runs inside a span of its own. The result or error passes through unchanged.
 */
export function observeIdempotency<T extends Observed>(
  hooks: IdempotencyHooks,
  table: ObservedTable,
  request: ObservedRequest,
  run: () => Promise<T>,
): Promise<T> {
  // No SDK registered: the API hands out a no-op span; skip its context and the attributes.
  const span = recordingSpan('txbarrier idempotency', { kind: SPAN_KIND_INTERNAL });
  if (!span) return timed(hooks, table, request, run);
  span.setAttributes({
    'db.system.name': DB_SYSTEM[table.engine],
    'db.collection.name': table.table,
    'http.request.method': request.method,
  });
  return withActiveSpan(span, () =>
    timed(hooks, table, request, run, (outcome, error) => {
      span.setAttribute('txbarrier.idempotency.outcome', outcome);
      if (error !== undefined) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SPAN_STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      span.end();
    }),
  );
}

async function timed<T extends Observed>(
  hooks: IdempotencyHooks,
  table: ObservedTable,
  request: ObservedRequest,
  run: () => Promise<T>,
  endSpan?: (outcome: IdempotencyOutcome, error?: unknown) => void,
): Promise<T> {
  if (!endSpan && !hooks.onOutcome && !hooks.logger && !metricsOn()) return run();
  const started = performance.now();
  const base = { method: request.method, target: request.target };
  let result: T;
  try {
    result = await run();
  } catch (error) {
    endSpan?.('error', error);
    report(hooks, table, { ...base, outcome: 'error', durationMs: performance.now() - started, error });
    throw error;
  }
  endSpan?.(result.outcome);
  const { outcome, status, scope, key, error } = result;
  report(hooks, table, {
    ...base,
    outcome,
    status,
    ...(scope === undefined ? {} : { scope }),
    ...(key === undefined ? {} : { key }),
    durationMs: performance.now() - started,
    ...(error === undefined ? {} : { error }),
  });
  return result;
}

/** A hook or logger that throws cannot unsend an answer: its error becomes a process warning. */
function report(hooks: IdempotencyHooks, table: ObservedTable, event: IdempotencyEvent): void {
  recordIdempotency(table.engine, event);
  const { logger, onOutcome } = hooks;
  const { error, ...fields } = event;
  try {
    logger?.[LEVEL[event.outcome]]?.call(logger, error === undefined ? fields : { ...fields, err: error }, `txbarrier idempotency ${event.outcome}`);
  } catch (loggerError) {
    process.emitWarning(`txbarrier: the logger threw: ${String(loggerError)}`, 'TxbarrierHookWarning');
  }
  try {
    onOutcome?.(event);
  } catch (hookError) {
    process.emitWarning(`txbarrier: onOutcome hook threw: ${String(hookError)}`, 'TxbarrierHookWarning');
  }
}
