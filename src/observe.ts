import { BarrierFailure, BarrierOngoing } from './errors.js';
import type { BarrierFields } from './fields.js';

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
  /** Receives one line per call (nothing is printed without one). */
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

/** Times `run` and reports its outcome, or how it failed, to the hooks; the result or error passes through. */
export async function observe<T extends { outcome: Outcome }>(hooks: BarrierHooks, call: CallFields, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const finish = (outcome: OutcomeEvent['outcome'], error?: unknown) =>
    report(hooks, { ...call, outcome, durationMs: performance.now() - started, ...(error === undefined ? {} : { error }) });
  try {
    const result = await run();
    finish(result.outcome);
    return result;
  } catch (error) {
    finish(error instanceof BarrierFailure ? 'failure' : error instanceof BarrierOngoing ? 'ongoing' : 'error', error);
    throw error;
  }
}

/** Tells the hooks about a finished call. A hook that throws cannot undo a committed result, so its error goes to the logger (or a process warning), never to the caller. */
function report(hooks: BarrierHooks, event: OutcomeEvent): void {
  const { onOutcome, logger } = hooks;
  if (logger) {
    const { error, ...fields } = event;
    logger[LEVEL[event.outcome]]?.call(logger, error === undefined ? fields : { ...fields, err: error }, `txbarrier ${event.outcome}`);
  }
  if (!onOutcome) return;
  try {
    onOutcome(event);
  } catch (hookError) {
    if (logger?.error) logger.error({ err: hookError }, 'txbarrier: onOutcome hook threw');
    else process.emitWarning(`txbarrier: onOutcome hook threw: ${String(hookError)}`, 'TxbarrierHookWarning');
  }
}
