/**
 * `txbarrier/restate`: barriers for the `ctx.run` steps of Restate handlers. Restate runs a step at
 * least once: a service process that dies after the step's database commit, but before Restate
 * recorded the step's result in its journal, runs the step again on the next attempt. And a saga's
 * compensation can run while the step it undoes is still holding its transaction (the invocation was
 * cancelled mid-step) or before that step ever reached the database. Keyed as DTM keys a saga
 * branch, the barrier absorbs all three: the repeat (`duplicate`), the compensation of a step that
 * never committed (`null-compensation`), and the step that arrives after its compensation (`dangling`).
 *
 * The keys (a storage format: see docs/restate.md before changing anything here): trans_type `saga`,
 * gid = the invocation id, branch_id = the step's name and its occurrence index among the
 * invocation's steps of that name (`compositeKey([name, index])`: `debit/0`, `debit/1`), op `action`,
 * or `compensate` for a saga step's compensation, which shares its action's gid and branch_id.
 * Values longer than the columns are hashed, never truncated (`compositeKey`, `keyPart`).
 *
 * The index is counted when the step is *started* (`stepBarrier`, `runStep`, `saga.step`), in the
 * handler's own code, which Restate replays in the same order on every attempt; so a retried attempt
 * gives each step the index it had before. It is never counted inside a `ctx.run` action, which a
 * replay skips for the steps already journaled.
 *
 * Nothing here imports Restate: the handler passes its own `ctx`, described by `RestateContext`.
 */
import { Barrier, compositeKey, keyPart } from '../../src/index.js';

/** A duration as the SDK takes it: milliseconds, or the sum of the parts given. */
export type RestateDuration = number | { days?: number; hours?: number; minutes?: number; seconds?: number; milliseconds?: number };

/**
 * Retry options of one `ctx.run`, handed to the SDK as they are (its `RunOptions`, without a serde:
 * the journal holds JSON). Each defaults to the SDK's default: retried until it succeeds.
 */
export interface RestateRunOptions {
  /** Attempts, the first included, before `ctx.run` throws a `TerminalError`. */
  maxRetryAttempts?: number;
  /** How long to retry before `ctx.run` throws a `TerminalError`. */
  maxRetryDuration?: RestateDuration;
  /** The first retry's delay (the SDK's default: 50 ms). */
  initialRetryInterval?: RestateDuration;
  /** The longest delay between retries (the SDK's default: 10 s). */
  maxRetryInterval?: RestateDuration;
  /** How much each delay grows over the one before (the SDK's default: 2). */
  retryIntervalFactor?: number;
}

/** The part of `@restatedev/restate-sdk`'s `Context` (and its object and workflow contexts) the barrier uses. */
export interface RestateContext {
  /** The invocation's request: its `id` stays the same across the invocation's retries and suspensions. */
  request(): { readonly id: string };
  run<T>(name: string, action: () => Promise<T>, options?: RestateRunOptions): Promise<T>;
}

/** What a step's work receives: the barrier it runs its transaction under. */
export type StepWork<T> = (barrier: Barrier) => Promise<T>;

// Occurrences per step name, per attempt: the SDK makes a new context for every attempt.
const occurrences = new WeakMap<object, Map<string, number>>();

/**
 * The barrier of the next step named `step` in this invocation (trans_type `saga`, gid = invocation
 * id, branch_id = `step/<occurrence>`, op `action`). Call it in the handler, right before the
 * `ctx.run` whose action uses it, never inside that action: the occurrence is counted here, and
 * Restate skips the actions of journaled steps on replay. `runStep` does both for you. Throws
 * `BarrierInputError` (`ERR_TXBARRIER_INPUT`) for an empty step name.
 */
export function stepBarrier(ctx: Pick<RestateContext, 'request'>, step: string): Barrier {
  return barrierOf(ctx, nextBranch(ctx, step), 'action');
}

/**
 * Runs one step as `ctx.run(step, …)` whose action is `work(barrier)`, with the barrier of the
 * step's next occurrence (`stepBarrier`). `work` runs its transaction through the barrier:
 * `barrier.call(store, fn)` or `barrier.within(executor, fn)`; what it resolves to is journaled, so
 * it must be serializable (a `BarrierResult` is, when `fn`'s value is).
 */
export function runStep<T>(ctx: RestateContext, step: string, work: StepWork<T>, options?: RestateRunOptions): Promise<T> {
  const barrier = stepBarrier(ctx, step);
  return ctx.run(step, () => work(barrier), options);
}

/** A saga within one invocation: its steps, each with the compensation that undoes it. */
export interface RestateSaga {
  /**
   * Registers the step's compensation, then runs its action as `runStep` does. The compensation
   * is registered first because a step that failed, was cancelled or is still running may have
   * committed, or may still commit: its compensation finds out (see docs/restate.md).
   */
  step<T>(step: string, action: StepWork<T>, compensate: StepWork<unknown>, options?: RestateRunOptions): Promise<T>;
  /**
   * Runs the compensation of every step started, newest first, each in a `ctx.run` named
   * `<step> (compensate)` under the barrier of its action's key with op `compensate`, and forgets
   * them. `options` defaults to the SDK's (retried until it succeeds), which a compensation needs.
   */
  compensate(options?: RestateRunOptions): Promise<void>;
}

/**
 * A saga helper for one invocation: make it at the top of the handler (each attempt replays the
 * handler, and makes it again). A step's action and its compensation share gid and branch_id and
 * differ in op, so a compensation whose step never committed is a `null-compensation`, and a step
 * that commits after its compensation is `dangling`.
 */
export function restateSaga(ctx: RestateContext): RestateSaga {
  const started: { step: string; branch: string; compensate: StepWork<unknown> }[] = [];
  return {
    step(step, action, compensate, options) {
      const branch = nextBranch(ctx, step);
      started.push({ step, branch, compensate });
      const barrier = barrierOf(ctx, branch, 'action');
      return ctx.run(step, () => action(barrier), options);
    },
    async compensate(options) {
      for (const { step, branch, compensate } of started.splice(0).reverse()) {
        const barrier = barrierOf(ctx, branch, 'compensate');
        await ctx.run(`${step} (compensate)`, () => compensate(barrier), options);
      }
    },
  };
}

function nextBranch(ctx: object, step: string): string {
  let counts = occurrences.get(ctx);
  if (counts === undefined) occurrences.set(ctx, (counts = new Map()));
  // Validated before it is counted: a refused name takes no index.
  const branch = compositeKey([step, String(counts.get(step) ?? 0)], 'branch_id');
  counts.set(step, (counts.get(step) ?? 0) + 1);
  return branch;
}

function barrierOf(ctx: Pick<RestateContext, 'request'>, branchId: string, op: 'action' | 'compensate'): Barrier {
  return Barrier.from({ transType: 'saga', gid: keyPart(ctx.request().id, 'gid'), branchId, op });
}
