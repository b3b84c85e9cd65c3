/**
 * The activities of the Temporal suite, over a `Bank`. `applyOnce` is a standalone activity
 * (keyed by workflow id and activity id); `action` and `compensate` are one saga step's two ops
 * (keyed by workflow id and step name). With `guarded: false` they run the same work without the
 * barrier: the control that shows what the barrier prevents.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { activityInfo } from '@temporalio/activity';
import { activityBarrier, sagaStepBarrier } from '../../../adapters/engines/temporal.js';
import type { Outcome } from '../../../src/index.js';
import type { Bank } from '../bank.js';

export type StepOutcome = Outcome;

/**
 * How a saga's debit step is late, for the timeout test (its activity times out after 1 s):
 * `before-barrier`: it reaches the database after 2.5 s (a pause, a partition), after the
 * compensation; `holding-transaction`: it has written its rows and holds its transaction 2.5 s
 * before committing, while the compensation arrives.
 */
export type Late = 'before-barrier' | 'holding-transaction';
export const LATE_MS = 2500;

export interface StepInput {
  step: string;
  account: string;
  delta: number;
  late?: Late;
}

export interface ActivityOptions {
  /** Run the steps with the barrier. Defaults to true. */
  guarded?: boolean;
  /** Called after a standalone activity's transaction has committed, before it returns. */
  afterCommit?: (workflowId: string, step: string, outcome: StepOutcome) => void;
}

export function bankActivities(bank: Bank, { guarded = true, afterCommit }: ActivityOptions = {}) {
  const entry = (input: StepInput, op: string, delta: number) => {
    const workflowId = activityInfo().workflowExecution?.workflowId ?? '';
    return { gid: workflowId, step: input.step, op, account: input.account, delta };
  };
  return {
    async applyOnce(input: StepInput): Promise<StepOutcome> {
      const applied = entry(input, 'action', input.delta);
      const outcome = await bank.apply(guarded ? activityBarrier(activityInfo()) : undefined, applied);
      afterCommit?.(applied.gid, input.step, outcome);
      return outcome;
    },
    async action(input: StepInput): Promise<StepOutcome> {
      // A plain timer, not the activity's cancellable sleep: a late step does not know it timed out.
      if (input.late === 'before-barrier') await sleep(LATE_MS);
      const hold = input.late === 'holding-transaction' ? () => sleep(LATE_MS) : undefined;
      const barrier = guarded ? sagaStepBarrier(activityInfo(), input.step, 'action') : undefined;
      return bank.apply(barrier, entry(input, 'action', input.delta), hold);
    },
    async compensate(input: StepInput): Promise<StepOutcome> {
      const barrier = guarded ? sagaStepBarrier(activityInfo(), input.step, 'compensate') : undefined;
      return bank.apply(barrier, entry(input, 'compensate', -input.delta));
    },
  };
}

export type BankActivities = ReturnType<typeof bankActivities>;
