/**
 * The workflows of the Temporal suite, bundled once per run (setup.ts) for every worker.
 * Workflow code runs in Temporal's sandbox: it imports only the activities' types.
 */
import { ActivityFailure, proxyActivities } from '@temporalio/workflow';
import type { BankActivities, StepOutcome } from './activities.js';

export interface TransferInput {
  from: string;
  to: string;
  amount: number;
}

// Retried until it settles: a killed worker's attempt times out after 5 s and runs again.
const retried = proxyActivities<BankActivities>({
  startToCloseTimeout: '5s',
  retry: { initialInterval: '100ms', backoffCoefficient: 2, maximumInterval: '1s' },
});

/** Two standalone activities, each retried until it settles: the kill test's workflow. */
export async function transfer({ from, to, amount }: TransferInput): Promise<StepOutcome[]> {
  return [
    await retried.applyOnce({ step: 'debit', account: from, delta: -amount }),
    await retried.applyOnce({ step: 'credit', account: to, delta: amount }),
  ];
}

export interface SagaInput extends TransferInput {
  /** How the debit step is late: see `Late` in activities.ts. */
  late: 'before-barrier' | 'holding-transaction';
}

export interface SagaResult {
  /** What the workflow saw of each action: an outcome, or `timed-out`. */
  actions: (StepOutcome | 'timed-out')[];
  /** What each compensation returned, in the order they ran. */
  compensations: StepOutcome[];
}

// One attempt with a short timeout, so a slow step fails the saga while it is still running.
const once = proxyActivities<BankActivities>({ startToCloseTimeout: '1s', retry: { maximumAttempts: 1 } });

/**
 * A saga whose debit step outlives its timeout: the workflow compensates every step it started,
 * the timed-out one included (it may have committed, or may still commit), in reverse order.
 */
export async function saga({ from, to, amount, late }: SagaInput): Promise<SagaResult> {
  const steps = [
    { step: 'debit', account: from, delta: -amount, late },
    { step: 'credit', account: to, delta: amount },
  ];
  const started: typeof steps = [];
  const result: SagaResult = { actions: [], compensations: [] };
  try {
    for (const step of steps) {
      started.push(step);
      result.actions.push(await once.action(step));
    }
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    result.actions.push('timed-out');
    for (const step of started.reverse()) result.compensations.push(await retried.compensate(step));
  }
  return result;
}
