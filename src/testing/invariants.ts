import type { FaultKind, PlannedFault } from './schedule.js';

/** How the coordinator left a saga. */
export type SagaStatus = 'succeeded' | 'compensated' | 'stuck';

/** Why a saga was compensated: a branch answered FAILURE, its action never got an answer, or a scheduled abort. */
export type AbortCause = 'failure' | 'gave-up' | FaultKind;

/** One saga as the coordinator saw it. Your `check` compares this with what your database committed. */
export interface SagaResult {
  index: number;
  gid: string;
  /** The branch ids, in saga order (`01`, `02`, …). */
  branchIds: string[];
  /** `stuck`: a compensation never succeeded within the attempts allowed. */
  status: SagaStatus;
  abortCause?: AbortCause;
  payload: unknown;
  faults: PlannedFault[];
  /** What happened, in order: every delivery and its reply, every injected fault. */
  events: string[];
}

/** An invariant that did not hold; `gid` names the saga when it is about one. */
export interface Violation {
  gid?: string;
  problem: string;
}

/**
 * One applied effect as your business tables recorded it, inside the barrier's transaction:
 * a ledger row per applied action or compensation. `seq` orders them (an auto-increment column).
 */
export interface LedgerEntry {
  gid: string;
  branchId: string;
  op: 'action' | 'compensate';
  seq: number;
}

/**
 * The saga invariants, read from committed effects: a succeeded saga applied every action exactly
 * once and no compensation; a compensated saga left every branch either untouched or applied once
 * and compensated once; no compensation ran for an action that never committed; no action applied
 * after its compensation. Entries of gids not in `sagas` are ignored.
 */
export function checkLedger(sagas: readonly SagaResult[], entries: readonly LedgerEntry[]): Violation[] {
  const byBranch = new Map<string, LedgerEntry[]>();
  for (const entry of entries) {
    const key = `${entry.gid}\u0000${entry.branchId}`;
    byBranch.set(key, [...(byBranch.get(key) ?? []), entry]);
  }
  const violations: Violation[] = [];
  for (const saga of sagas) {
    if (saga.status === 'stuck') continue;
    for (const branchId of saga.branchIds) {
      const effects = byBranch.get(`${saga.gid}\u0000${branchId}`) ?? [];
      const actions = effects.filter((e) => e.op === 'action');
      const compensations = effects.filter((e) => e.op === 'compensate');
      const problem = (text: string) => violations.push({ gid: saga.gid, problem: `branch ${branchId}: ${text}` });
      if (actions.length > 1) problem(`action applied ${actions.length} times`);
      if (compensations.length > 1) problem(`compensation applied ${compensations.length} times`);
      if (compensations.length > 0 && actions.length === 0) problem('compensation ran for an action that never committed');
      const lastAction = Math.max(...actions.map((e) => e.seq));
      const firstCompensation = Math.min(...compensations.map((e) => e.seq));
      if (lastAction > firstCompensation) problem('action applied after its compensation');
      if (saga.status === 'succeeded' && actions.length === 0) problem('saga succeeded but the action never committed');
      if (saga.status === 'succeeded' && compensations.length > 0) problem('saga succeeded but was compensated');
      if (saga.status === 'compensated' && actions.length > compensations.length) {
        problem('saga compensated but its action is still applied');
      }
    }
  }
  return violations;
}
