/**
 * The Restate suite's services, over a `Bank` (test/peers/bank.ts). `transfer` runs two plain steps
 * (`runStep`: invocation id + step name + occurrence); `saga` runs them as a saga (`restateSaga`) and
 * compensates every step it started when the invocation is cancelled. With `guarded: false` the
 * same steps run without the barrier: the control that shows what the barrier prevents.
 * Imported by service.ts (a child process) and by the saga test (in its own process): Node >= 22.
 */
import * as restate from '@restatedev/restate-sdk';
import { restateSaga, runStep } from '../../../adapters/engines/restate.js';
import type { Barrier, Outcome } from '../../../src/index.js';
import type { Bank } from '../bank.js';

export interface TransferInput {
  /** The test's name for this transfer (the kill list names transfers, not invocations). */
  id: string;
  from: string;
  to: string;
  amount: number;
  /** The saga test's: where the debit step waits for the test (`debitGate`). */
  hold?: Where;
}

export type Where = 'before-barrier' | 'holding-transaction';

export interface TransferResult {
  invocationId: string;
  outcomes: Outcome[];
}

export interface ServiceOptions {
  /** Run the steps with the barrier. Defaults to true. */
  guarded?: boolean;
  /** Called after a step's transaction committed, before its `ctx.run` action returns (so before Restate records it). */
  afterCommit?: (transfer: string, step: string, outcome: Outcome) => void;
  /**
   * The saga's debit action awaits this before it reaches the database (`before-barrier`), and
   * inside its transaction after the business work (`holding-transaction`): the saga test holds it
   * there while it cancels the invocation.
   */
  debitGate?: (input: TransferInput, where: Where) => Promise<void>;
}

/** The service `name` (one per file: Restate keeps one registration per service name). */
export function bankService(name: string, bank: Bank, { guarded = true, afterCommit, debitGate }: ServiceOptions = {}) {
  /** One step's transaction: balance and ledger row, under `barrier` unless the run is the control. */
  const apply = async (ctx: restate.Context, barrier: Barrier, input: TransferInput, step: string, op: 'action' | 'compensate', account: string, delta: number, hold?: () => Promise<void>) => {
    const outcome = await bank.apply(guarded ? barrier : undefined, { gid: ctx.request().id, step, op, account, delta }, hold);
    afterCommit?.(input.id, step, outcome);
    return outcome;
  };
  return restate.service({
    name,
    handlers: {
      async transfer(ctx: restate.Context, input: TransferInput): Promise<TransferResult> {
        const debit = await runStep(ctx, 'debit', (barrier) => apply(ctx, barrier, input, 'debit', 'action', input.from, -input.amount));
        const credit = await runStep(ctx, 'credit', (barrier) => apply(ctx, barrier, input, 'credit', 'action', input.to, input.amount));
        return { invocationId: ctx.request().id, outcomes: [debit, credit] };
      },
      async saga(ctx: restate.Context, input: TransferInput): Promise<TransferResult> {
        const saga = restateSaga(ctx);
        const id = ctx.request().id;
        const outcomes: Outcome[] = [];
        try {
          outcomes.push(
            await saga.step(
              'debit',
              async (barrier) => {
                await debitGate?.(input, 'before-barrier');
                return apply(ctx, barrier, input, 'debit', 'action', input.from, -input.amount, () => debitGate?.(input, 'holding-transaction') ?? Promise.resolve());
              },
              (barrier) => apply(ctx, barrier, input, 'debit', 'compensate', input.from, input.amount),
            ),
          );
          outcomes.push(
            await saga.step(
              'credit',
              (barrier) => apply(ctx, barrier, input, 'credit', 'action', input.to, input.amount),
              (barrier) => apply(ctx, barrier, input, 'credit', 'compensate', input.to, -input.amount),
            ),
          );
          return { invocationId: id, outcomes };
        } catch (error) {
          // A cancellation (or any terminal failure) compensates every step started, then fails the invocation.
          if (error instanceof restate.TerminalError) await saga.compensate();
          throw error;
        }
      },
    },
  });
}
