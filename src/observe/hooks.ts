import type { Dialect } from '../dialects/dialect.js';
import { BarrierFailure, BarrierOngoing, BarrierTimeout } from '../errors.js';
import type { BarrierFields } from '../barrier/fields.js';
import { metricsOn, recordBarrierCall } from './metrics.js';
import { DB_SYSTEM, type DbSystem, type OtelSpan, otelTracer, recordingSpan, SPAN_KIND_INTERNAL, SPAN_STATUS_ERROR, withActiveSpan } from './tracing.js';

/** What the barrier decided for one call. */
export type Outcome = 'applied' | 'duplicate' | 'null-compensation' | 'dangling';

/** One finished call: its outcome, or how it failed. */
export interface OutcomeEvent extends BarrierFields {
  barrierId: string;
  /**
   * `dangling` is the one to alert on: an action arrived after its compensation, which means the
   * coordinator gave up on it while it was still in flight. `failure` is a `BarrierFailure`,
   * `ongoing` a `BarrierOngoing` (thrown or mapped from a database conflict), `error` anything else.
   */
  outcome: Outcome | 'failure' | 'ongoing' | 'error';
  /**
   * Whether the transaction holding this decision committed. `call` reports after its own COMMIT
   * (true; false when it failed). Under `within` the transaction is the caller's: executors that
   * can see its end (knex, Sequelize) report after it, with the truth; the others report the
   * decision before the caller's COMMIT, with `committed: false`.
   */
  committed: boolean;
  durationMs: number;
  error?: unknown;
}

/** A pino- or console-shaped logger; every method is optional. */
export interface Logger {
  debug?(object: unknown, message?: string): void;
  info?(object: unknown, message?: string): void;
  warn?(object: unknown, message?: string): void;
  error?(object: unknown, message?: string): void;
}

export interface BarrierHooks {
  /** Called once per `call`/`within`, after the transaction has finished. */
  onOutcome?: (event: OutcomeEvent) => void;
  /**
   * Called for each dangling action (as well as `onOutcome`): an action that arrived after its
   * compensation. The barrier kept it from applying, but it means a request outlived the
   * coordinator's timeout; point an alert here.
   */
  onDangling?: (event: OutcomeEvent) => void;
  /** Receives one line per call (nothing is printed without one); dangling actions at `warn`. */
  logger?: Logger;
}

const LEVEL: Record<OutcomeEvent['outcome'], keyof Logger> = {
  applied: 'debug',
  duplicate: 'info',
  'null-compensation': 'info',
  dangling: 'warn',
  failure: 'info',
  ongoing: 'warn',
  error: 'error',
};

/** The barrier fields and barrier id of one call. */
export type CallFields = BarrierFields & { barrierId: string };

/** Where a call's rows go, for the hooks, the span's database attributes and the metrics. */
export interface ObservedTarget {
  readonly hooks: BarrierHooks;
  readonly dialect: { readonly name: DbSystem } & Pick<Dialect, 'isRetryable'>;
  readonly table: string;
}

/**
 * Times `run` and reports its outcome, or how it failed, to the hooks; the result or error passes
 * through. With `@opentelemetry/api` installed, `run` also runs inside a span of its own, so the
 * driver's spans for the transaction's statements nest under it.
 */
export function observe<T extends { outcome: Outcome }>(
  target: ObservedTarget,
  call: CallFields,
  run: () => Promise<T>,
  settled: Settled = COMMITTED_BY_RUN,
): Promise<T> {
  // No SDK registered: the API hands out a no-op span; skip its context, the attributes and the clock.
  const span = recordingSpan(`txbarrier ${call.transType} ${call.op}`, SPAN_OPTIONS);
  if (!span) return timed(target, call, run, settled);
  span.setAttributes({
    'db.system.name': DB_SYSTEM[target.dialect.name],
    'db.system': DB_SYSTEM[target.dialect.name],
    'db.collection.name': target.table,
    'txbarrier.trans_type': call.transType,
    'txbarrier.gid': call.gid,
    'txbarrier.branch_id': call.branchId,
    'txbarrier.op': call.op,
    'txbarrier.barrier_id': call.barrierId,
  });
  return withActiveSpan(span, () => timed(target, call, run, settled, span));
}

const SPAN_OPTIONS = { kind: SPAN_KIND_INTERNAL };

/**
 * Whether a call on `target` has anyone to report to: hooks, a logger, or `@opentelemetry/api`
 * (whose tracer or meter provider may record). When not, the call skips `observe` and its frames altogether.
 */
export function isObserved(target: ObservedTarget): boolean {
  const { onOutcome, onDangling, logger } = target.hooks;
  return Boolean(otelTracer() || onOutcome || onDangling || logger);
}

/**
 * When a successful run's transaction is known to have committed: `'by-run'` when `run` itself
 * committed (`call`); a function that registers a listener for the end of the caller's transaction
 * (knex, Sequelize under `within`); `'unknown'` when nothing tells (reported at once, `committed: false`).
 */
export type Settled = 'by-run' | 'unknown' | ((listener: (committed: boolean) => void) => void);
const COMMITTED_BY_RUN: Settled = 'by-run';

function timed<T extends { outcome: Outcome }>(
  target: ObservedTarget,
  call: CallFields,
  run: () => Promise<T>,
  settled: Settled,
  span?: OtelSpan,
): Promise<T> {
  const { hooks } = target;
  // Nobody listening (a no-op span, no hooks, no meter provider): no clock reads, no event objects, no extra frame.
  if (!span && !hooks.onOutcome && !hooks.onDangling && !hooks.logger && !metricsOn()) return run();
  return timedAndReported(target, call, run, settled, span);
}

async function timedAndReported<T extends { outcome: Outcome }>(
  target: ObservedTarget,
  call: CallFields,
  run: () => Promise<T>,
  settled: Settled,
  span: OtelSpan | undefined,
): Promise<T> {
  const started = performance.now();
  const finish = (outcome: OutcomeEvent['outcome'], committed: boolean, error?: unknown) => {
    const durationMs = performance.now() - started;
    if (span) endSpan(span, outcome, committed, error);
    recordBarrierCall(target.dialect.name, call, outcome, durationMs, error, problemOf(target, error));
    report(target.hooks, { ...call, outcome, committed, durationMs, ...(error === undefined ? {} : { error }) });
  };
  let result: T;
  try {
    result = await run();
  } catch (error) {
    finish(error instanceof BarrierFailure ? 'failure' : error instanceof BarrierOngoing ? 'ongoing' : 'error', false, error);
    throw error;
  }
  if (typeof settled === 'function') settled((committed) => finish(result.outcome, committed));
  else finish(result.outcome, settled === 'by-run');
  return result;
}

/**
 * A transaction timeout, or a database conflict: in the barrier's own statements (a `BarrierOngoing`
 * whose cause is the driver's error) or in the function's (the driver's error itself, which the
 * fronts answer ONGOING too). `isRetryable` looks through the cause chain.
 */
function problemOf(target: ObservedTarget, error: unknown): 'conflict' | 'timeout' | undefined {
  if (error instanceof BarrierTimeout) return 'timeout';
  if (error !== undefined && target.dialect.isRetryable(error)) return 'conflict';
  return undefined;
}

function endSpan(span: OtelSpan, outcome: OutcomeEvent['outcome'], committed: boolean, error: unknown): void {
  span.setAttribute('txbarrier.outcome', outcome);
  span.setAttribute('txbarrier.committed', String(committed));
  if (error !== undefined) {
    span.setAttribute('error.type', error instanceof Error ? error.name : typeof error);
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SPAN_STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/**
 * Tells the logger and hooks about a finished call. One that throws cannot undo a committed
 * result, so its error goes to the logger (or a process warning), never to the caller.
 */
function report(hooks: BarrierHooks, event: OutcomeEvent): void {
  const { onOutcome, onDangling, logger } = hooks;
  if (logger) {
    const { error, ...fields } = event;
    try {
      logger[LEVEL[event.outcome]]?.call(logger, error === undefined ? fields : { ...fields, err: error }, `txbarrier ${event.outcome}`);
    } catch (loggerError) {
      complain(undefined, 'the logger threw', loggerError);
    }
  }
  runHook('onOutcome', onOutcome, event, logger);
  if (event.outcome === 'dangling') runHook('onDangling', onDangling, event, logger);
}

function runHook(name: string, hook: ((event: OutcomeEvent) => void) | undefined, event: OutcomeEvent, logger: Logger | undefined): void {
  if (!hook) return;
  try {
    hook(event);
  } catch (hookError) {
    complain(logger, `${name} hook threw`, hookError);
  }
}

/** Reports a broken hook or logger: to the logger's error method if that works, else as a process warning. */
function complain(logger: Logger | undefined, what: string, error: unknown): void {
  try {
    if (logger?.error) return logger.error({ err: error }, `txbarrier: ${what}`);
  } catch {
    // The logger is broken too: fall through to the warning, which always works.
  }
  process.emitWarning(`txbarrier: ${what}: ${String(error)}`, 'TxbarrierHookWarning');
}
