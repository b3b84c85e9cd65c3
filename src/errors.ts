/**
 * Every error txbarrier throws carries a stable `code` (listed in docs/errors.md): match on it, never on
 * the message, which may be reworded.
 */
export class BarrierError extends Error {
  readonly code: string;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.name = new.target.name;
    this.code = options?.code ?? 'ERR_TXBARRIER';
  }
}

/** One rejected field of a barrier request. */
export interface FieldProblem {
  /** The wire name: `gid`, `trans_type`, `branch_id` or `op`. */
  field: string;
  problem: string;
}

/**
 * The request does not identify a branch: a field is missing, repeated, too long,
 * holds control characters, or names an op its transaction type does not have.
 * Thrown before anything touches the database.
 */
export class BarrierInputError extends BarrierError {
  readonly problems: readonly FieldProblem[];
  constructor(problems: readonly FieldProblem[]) {
    super(`invalid barrier request: ${problems.map((p) => `${p.field} ${p.problem}`).join('; ')}`, { code: 'ERR_TXBARRIER_INPUT' });
    this.problems = problems;
  }
}

/**
 * Thrown by business code: this branch has failed for good and the coordinator should roll
 * the global transaction back. The barrier rolls the local transaction back (its rows too),
 * so a retry of the same op runs the business code again.
 */
export class BarrierFailure extends BarrierError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'ERR_TXBARRIER_FAILURE' });
  }
}

/**
 * The branch cannot be decided yet; the coordinator should retry later. Business code throws it
 * itself, and the barrier throws it (with the database error as `cause`) when the database
 * reports a conflict that a retry resolves: a deadlock, a serialization failure, a lock timeout,
 * a busy SQLite file.
 */
export class BarrierOngoing extends BarrierError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, { code: 'ERR_TXBARRIER_ONGOING', ...options });
  }
}

/**
 * The business function did not settle within the store's `transactionTimeout`. The transaction
 * was rolled back by closing its connection (the server ends it), so nothing of it committed;
 * the coordinator reads this as ONGOING and retries.
 */
export class BarrierTimeout extends BarrierOngoing {
  constructor(timeoutMs: number) {
    super(`the business function did not finish within ${timeoutMs} ms; its transaction was rolled back`, {
      code: 'ERR_TXBARRIER_TIMEOUT',
    });
  }
}

/**
 * A 2-phase message's local transaction was asked to run a second time. It must not: either it
 * already committed (`committed: true`) or the coordinator's check-back already decided it rolled
 * back (`committed: false`), and the message goes on or dies accordingly.
 */
export class BarrierDuplicateMessage extends BarrierError {
  readonly committed: boolean;
  constructor(gid: string, committed: boolean) {
    super(
      committed
        ? `message ${gid}: its local transaction already committed`
        : `message ${gid}: the check-back already marked it rolled back`,
      { code: 'ERR_TXBARRIER_DUPLICATE_MESSAGE' },
    );
    this.committed = committed;
  }
}

/**
 * A store, executor or call was set up wrongly: a table name that is not an identifier, an unknown
 * engine, a handle that is not a transaction, a missing table. `code` says which (see docs/errors.md).
 */
export class BarrierConfigError extends BarrierError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, { code: 'ERR_TXBARRIER_CONFIG', ...options });
  }
}

/**
 * A statement failed inside the transaction and the business code caught the error without
 * rethrowing. PostgreSQL has aborted the transaction and its COMMIT rolls everything back, so the
 * barrier reports this instead of success; nothing was committed.
 */
export class BarrierTransactionAborted extends BarrierError {
  constructor(options?: { cause?: unknown }) {
    super(
      'the transaction was aborted by a failed statement that the business code caught without rethrowing, ' +
        'so nothing was committed. Rethrow the error, or wrap a statement that may fail in a SAVEPOINT.',
      { ...options, code: 'ERR_TXBARRIER_TRANSACTION_ABORTED' },
    );
  }
}
