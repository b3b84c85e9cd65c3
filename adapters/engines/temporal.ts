/**
 * `txbarrier/temporal`: barriers for Temporal activities. Temporal runs an activity at least once:
 * a worker that dies after the activity's database commit, but before the server recorded its
 * completion, runs it again on the next attempt. And a saga's compensation can be scheduled while
 * the action it undoes is still running (the action timed out, then commits late) or never ran at
 * all. Keyed as DTM keys a saga branch, the barrier absorbs all three: the repeat (`duplicate`),
 * the compensation of an action that never committed (`null-compensation`), and the action that
 * arrives after its compensation (`dangling`).
 *
 * The keys (a storage format: see docs/temporal.md before changing anything here):
 * - saga step: trans_type `saga`, gid = the workflow id, branch_id = the step's name, op `action` or
 *   `compensate`. The action and its compensation share gid and branch_id, so each sees the other.
 * - standalone activity: trans_type `saga`, gid = the workflow id, branch_id = the activity id,
 *   op `action`.
 * Values longer than the columns (a workflow id may be 1,000 bytes) go through `keyPart`: hashed,
 * never truncated. The run id is deliberately not part of the key: a reset re-runs the steps after
 * its reset point in a new run, and a committed step must then be recognised, not applied twice.
 *
 * Nothing here imports Temporal: an activity passes its `activityInfo()` (or `Context.current().info`).
 */
import { Barrier, BarrierInputError, keyPart } from '../../src/index.js';

/** The part of `@temporalio/activity`'s `Info` the barrier reads. */
export interface TemporalActivityInfo {
  /** The activity's id in its workflow: the workflow's `activityId` option, else a sequence number. */
  readonly activityId: string;
  /** The workflow that scheduled the activity; absent for an activity a client started on its own. */
  readonly workflowExecution?: { readonly workflowId: string } | undefined;
}

/** A saga step's two ops: the step's action, and the compensation that undoes it. */
export type SagaOp = 'action' | 'compensate';

/**
 * The barrier of one saga step, for an activity to `call(store, fn)` (its own transaction) or
 * `within(executor, fn)` (a transaction it opened). The action and the compensation of one step
 * must name the same `step`, unique within the workflow (`debit`, `credit:acct-7`); each attempt
 * of the activity makes a new barrier. Throws `BarrierInputError` (`ERR_TXBARRIER_INPUT`) for an
 * empty step, an activity no workflow scheduled, or an op other than `action`/`compensate`.
 */
export function sagaStepBarrier(info: Pick<TemporalActivityInfo, 'workflowExecution'>, step: string, op: SagaOp): Barrier {
  return Barrier.from({ transType: 'saga', gid: workflowGid(info), branchId: keyPart(step, 'branch_id'), op });
}

/**
 * The barrier of an activity that is not a saga step: it applies once per workflow id and activity
 * id, however often Temporal runs it. Default activity ids are sequence numbers that restart in
 * each run of a continue-as-new chain, so such a workflow must give these activities ids of its own
 * (see docs/temporal.md). Throws `BarrierInputError` (`ERR_TXBARRIER_INPUT`) for an activity no
 * workflow scheduled.
 */
export function activityBarrier(info: TemporalActivityInfo): Barrier {
  return Barrier.from({ transType: 'saga', gid: workflowGid(info), branchId: keyPart(info.activityId, 'branch_id'), op: 'action' });
}

function workflowGid(info: Pick<TemporalActivityInfo, 'workflowExecution'>): string {
  const workflowId = info.workflowExecution?.workflowId;
  // A client-started activity has no workflow to key it by; its own id is not unique across runs.
  if (workflowId === undefined) throw new BarrierInputError([{ field: 'gid', problem: 'is missing: no workflow scheduled this activity' }]);
  return keyPart(workflowId, 'gid');
}
