import type { Op } from './fields.js';
import type { Outcome } from '../observe/hooks.js';

/**
 * The barrier's decision, as data. `barrier.ts` decides with these tables and nothing else, and
 * the model checker's Promela model is generated from them (see `model/`), so the two cannot drift.
 *
 * A forward op (action, try, confirm, commit, msg) inserts its own row; a compensation (compensate,
 * cancel, rollback) inserts its origin op's row and its own in one statement and learns *which*
 * went in (RETURNING, or one statement per row where the server has none). Counting rows alone is
 * not enough: another writer (DTM's Python client, a prune) can leave a compensation's row without
 * its origin's, and a repeated compensation would then count one and run again.
 */

/** A compensation also writes the row of the op it undoes, so that op can never apply later. */
export const ORIGIN_OF: Readonly<Partial<Record<Op, Op>>> = { cancel: 'try', compensate: 'action', rollback: 'action' };

/** A compensation's two inserts. */
export interface CompensationRows {
  /** Its own row went in: no earlier delivery of this compensation committed. */
  own: boolean;
  /** Its origin op's row went in: the op it undoes never committed. */
  origin: boolean;
}

export const COMPENSATION_TABLE: ReadonlyArray<CompensationRows & { outcome: Outcome }> = [
  { own: true, origin: false, outcome: 'applied' }, // the origin committed; undo it
  { own: true, origin: true, outcome: 'null-compensation' }, // nothing to undo; the origin row now blocks the late op
  { own: false, origin: false, outcome: 'duplicate' }, // a repeat
  { own: false, origin: true, outcome: 'duplicate' }, // a repeat whose origin row someone removed (prune, foreign client): never undo twice
];

/** A forward op whose own insert was ignored: who wrote the row it ran into (the row's `reason`). */
export const FORWARD_TABLE: ReadonlyArray<{ writtenBy: 'same op' | 'compensation'; outcome: Exclude<Outcome, 'applied'> }> = [
  { writtenBy: 'same op', outcome: 'duplicate' },
  { writtenBy: 'compensation', outcome: 'dangling' }, // its compensation ran first: it must never apply
];

export function decideCompensation(rows: CompensationRows): Outcome {
  return COMPENSATION_TABLE.find((row) => row.own === rows.own && row.origin === rows.origin)!.outcome;
}

/** The outcome of a forward op that found its row already there, written for `reason`. */
export function decideForward(op: string, reason: string): Exclude<Outcome, 'applied'> {
  const writtenBy = reason === op ? 'same op' : 'compensation';
  return FORWARD_TABLE.find((row) => row.writtenBy === writtenBy)!.outcome;
}
