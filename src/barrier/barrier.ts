import { decideCompensation, decideForward, ORIGIN_OF } from './decision.js';
import type { Dialect } from '../dialects/dialect.js';
import { BarrierConfigError, BarrierDuplicateMessage, BarrierError, BarrierOngoing, BarrierTransactionAborted } from '../errors.js';
import {
  type BarrierFields,
  headerReader,
  objectReader,
  type Op,
  parseFields,
  queryReader,
  type TransType,
} from './fields.js';
import { isObserved, observe, type ObservedTarget, type Outcome, type Settled } from '../observe/hooks.js';
import type { BarrierConnection, BarrierExecutor, BarrierStore, BarrierTarget } from '../transaction/store.js';

export type BarrierResult<T> =
  | { outcome: 'applied'; value: T }
  | { outcome: Exclude<Outcome, 'applied'> };

/** Insert-ignores one barrier row in the call's transaction: `undefined` if it went in, else the reason of the row already there. */
export type Claim = (row: readonly string[]) => Promise<string | undefined>;

/**
 * A step run in a forward op's transaction after its own row went in and before `fn`; an outcome it
 * returns ends the call with that outcome (the transaction commits, `fn` never runs). The consumer
 * core's upgrade check is the one user; it is not part of the package's exports.
 */
export type BeforeApply = (claim: Claim) => Promise<Exclude<Outcome, 'applied'> | undefined>;

/** `barrier.call(store, fn)` with a `BeforeApply` step; assigned in the class's static block, which may reach its private members. */
export let callWithCheck: <Tx, T>(barrier: Barrier, store: BarrierStore<Tx>, check: BeforeApply, fn: (tx: Tx) => Promise<T> | T) => Promise<BarrierResult<T>>;


/**
 * What a call needs of where its barrier lives: who to report to, and which of the engine's errors
 * mean "retry later" or "no table". Every `BarrierTarget` is one; so is a Redis barrier.
 */
export interface CallTarget extends ObservedTarget {
  readonly dialect: ObservedTarget['dialect'] & Pick<Dialect, 'isRetryable' | 'isMissingTable'>;
}

/**
 * A call whose barrier keys and business work run as one atomic step outside any SQL transaction
 * (a Redis script): it takes the next barrier id, maps errors and reports the outcome exactly as
 * `call` does. Assigned in the class's static block; not part of the package's exports.
 */
export let callAtomically: <T>(barrier: Barrier, target: CallTarget, run: (barrierId: string) => Promise<BarrierResult<T>>) => Promise<BarrierResult<T>>;

/** DTM's key for a 2-phase message's local transaction, which the check-back also writes. */
export const MESSAGE_KEY = { branchId: '00', op: 'msg', barrierId: '01' } as const;

/**
 * One branch operation of one global transaction, as the coordinator named it.
 * Make one per incoming request; it is cheap and holds no connection.
 */
export class Barrier implements BarrierFields {
  readonly transType: TransType;
  readonly gid: string;
  readonly branchId: string;
  readonly op: Op;
  /** The barrier id the next call takes: a call advances it only if its transaction committed. */
  #next = 1;
  #running = false;

  private constructor(fields: BarrierFields) {
    this.transType = fields.transType;
    this.gid = fields.gid;
    this.branchId = fields.branchId;
    this.op = fields.op;
  }

  static {
    callWithCheck = (barrier, store, check, fn) =>
      barrier.#observed(store, (barrierId) => store.transaction((connection) => barrier.#guard(store, connection, barrierId, fn, check)));
    callAtomically = (barrier, target, run) => barrier.#observed(target, run);
  }

  /** From fields in code. Throws `BarrierInputError` naming every bad field. */
  static from(fields: { transType: string; gid: string; branchId: string; op: string }): Barrier {
    return new Barrier(parseFields(objectReader(fields)));
  }

  /** From `gid`, `trans_type`, `branch_id`, `op` in a `URLSearchParams`, a query string or a parsed object. */
  static fromQuery(query: URLSearchParams | string | Record<string, unknown>): Barrier {
    return new Barrier(parseFields(queryReader(query)));
  }

  /** From the `dtm-gid`, `dtm-trans_type`, `dtm-branch_id`, `dtm-op` headers. */
  static fromHeaders(headers: Headers | Record<string, unknown>): Barrier {
    return new Barrier(parseFields(headerReader(headers)));
  }

  /** The barrier of a 2-phase message's local transaction (DTM's branch `00`, op `msg`). */
  static forMessage(gid: string): Barrier {
    return Barrier.from({ transType: 'msg', gid, branchId: MESSAGE_KEY.branchId, op: MESSAGE_KEY.op });
  }

  /**
   * Runs `fn` in a new local transaction if, and only if, this op must apply; commits the barrier
   * rows with the business work. Each committed call on one instance takes the next barrier id
   * (01, 02, …): a handler may guard several local transactions, making its calls in the same
   * order on every retry. A call that did not commit gives its id back, so an in-process retry
   * on the same instance is the same step. Calls on one instance are sequential: a second call
   * while one is running throws `BarrierConfigError` (`ERR_TXBARRIER_CALL_IN_PROGRESS`).
   *
   * Resolves to the outcome. If `fn` throws, everything rolls back and that error is rethrown
   * unchanged. A database conflict in the barrier's own work or the commit becomes `BarrierOngoing`.
   */
  call<Tx, T>(store: BarrierStore<Tx>, fn: (tx: Tx) => Promise<T> | T): Promise<BarrierResult<T>> {
    // Not async: #observed's promise is the call's, without a frame (a promise and two turns) around it.
    return this.#observed(store, (barrierId) => store.transaction((connection) => this.#guard(store, connection, barrierId, fn)));
  }

  /**
   * Like `call`, inside a transaction the caller opened and will end. Writes the barrier rows and
   * runs `fn` when the op must apply; never commits or rolls back. Whatever the outcome, the caller
   * commits when this resolves: a suppressed outcome's rows must persist (a null compensation's
   * row is what stops the late action). Put all business work inside `fn`, never after this call.
   * If it throws, the caller rolls back.
   */
  within<Tx, T>(executor: BarrierExecutor<Tx>, fn: (tx: Tx) => Promise<T> | T): Promise<BarrierResult<T>> {
    return this.#observed(
      executor,
      async (barrierId) => {
        const result = await this.#guard(executor, executor, barrierId, fn);
        if (result.outcome === 'applied') await assertNotAborted(executor);
        return result;
      },
      executor.onTransactionEnd ?? 'unknown',
    );
  }

  /**
   * The coordinator's check-back for a 2-phase message: did the local transaction commit?
   * Inserts the message row marked `rollback` if it is absent, which waits while the local
   * transaction still holds that row, so a transaction that later commits is never reported
   * rolled back. A lock timeout or busy database throws `BarrierOngoing`.
   */
  async queryPrepared<Tx>(store: BarrierStore<Tx>): Promise<'committed' | 'rolledback'> {
    const key = [this.gid, MESSAGE_KEY.branchId, MESSAGE_KEY.op, MESSAGE_KEY.barrierId];
    const row = [this.transType, ...key, 'rollback'];
    const reason = await withCallErrors(store, () =>
      store.transaction(async (connection) => {
        await connection.execute(statementsOf(store).insertOne, row);
        return readReason(store, connection, key);
      }),
    );
    return reason === 'rollback' ? 'rolledback' : 'committed';
  }

  /** Writes the rows, decides (see `decision.ts`), and runs `fn` only for `applied`. */
  async #guard<Tx, T>(
    target: BarrierTarget,
    connection: BarrierConnection<Tx>,
    barrierId: string,
    fn: (tx: Tx) => Promise<T> | T,
    check?: BeforeApply,
  ): Promise<BarrierResult<T>> {
    const statements = statementsOf(target);
    const key = [this.gid, this.branchId, this.op, barrierId];
    const ownRow = [this.transType, ...key, this.op];
    const originOp = ORIGIN_OF[this.op];

    if (originOp) {
      const originRow = [this.transType, this.gid, this.branchId, originOp, barrierId, this.op];
      const outcome = decideCompensation(await insertCompensation(target, connection, originRow, ownRow));
      if (outcome !== 'applied') return { outcome };
    } else if ((await connection.execute(statements.insertOne, ownRow)) === 0) {
      // Only the suppressed path pays for a second statement: who wrote the row we ran into?
      const reason = await readReason(target, connection, key);
      if (this.op === 'msg') throw new BarrierDuplicateMessage(this.gid, reason !== 'rollback');
      return { outcome: decideForward(this.op, reason) };
    } else if (check) {
      const outcome = await check(async (row) => ((await connection.execute(statements.insertOne, row)) === 1 ? undefined : readReason(target, connection, row.slice(1, 5))));
      if (outcome) return { outcome };
    }
    try {
      return { outcome: 'applied', value: await fn(connection.tx) };
    } catch (error) {
      throw new BusinessError(error);
    }
  }

  /** Takes the next barrier id, maps database conflicts to `BarrierOngoing`, reports the outcome, and gives the id back on failure. */
  async #observed<T>(
    target: CallTarget,
    run: (barrierId: string) => Promise<BarrierResult<T>>,
    settled?: Settled,
  ): Promise<BarrierResult<T>> {
    if (this.#running) {
      throw new BarrierConfigError(
        `a call on the barrier of ${this.gid}/${this.branchId}/${this.op} is still running: calls on one Barrier are sequential (await each)`,
        { code: 'ERR_TXBARRIER_CALL_IN_PROGRESS' },
      );
    }
    this.#running = true;
    const barrierId = this.#next < 10 ? `0${this.#next}` : String(this.#next);
    // One async frame between the caller and the transaction when nobody observes: each layer
    // costs a promise and a microtask turn on every call.
    const attempt = () => withCallErrors(target, () => run(barrierId));
    try {
      const result = await (isObserved(target)
        ? observe(target, { transType: this.transType, gid: this.gid, branchId: this.branchId, op: this.op, barrierId }, attempt, settled)
        : attempt());
      this.#next++;
      return result;
    } finally {
      this.#running = false;
    }
  }
}

/** Carries an error of the business function out of the transaction, so it is rethrown unchanged (never mapped). */
class BusinessError {
  constructor(readonly error: unknown) {}
  /** What a report of it (a timed-out function failing later) shows: the business error itself. */
  toString(): string {
    return String(this.error);
  }
}

/** Refuses to report `applied` for work the caller's COMMIT would silently roll back (see `Dialect.abortedCheck`). */
async function assertNotAborted(executor: BarrierExecutor<unknown>): Promise<void> {
  const check = executor.dialect.abortedCheck;
  if (!check) return;
  try {
    await executor.select(check, []);
  } catch (error) {
    throw new BarrierTransactionAborted({ cause: error });
  }
}

async function readReason(target: BarrierTarget, connection: BarrierConnection<unknown>, key: unknown[]): Promise<string> {
  const rows = await connection.select(statementsOf(target).selectReason, key);
  if (rows.length === 0) {
    // The row we collided with is gone: pruned mid-request. Nothing can be decided safely now.
    throw new BarrierOngoing(`barrier row ${key.join('/')} vanished between insert and read`);
  }
  const reason = rows[0]!.reason;
  if (typeof reason !== 'string') {
    // Guessing here would turn a duplicate into a dangling action, or a lost message into a sent one.
    throw new BarrierConfigError(`barrier rows must come back with a string reason; got ${JSON.stringify(rows[0])}`, {
      code: 'ERR_TXBARRIER_DRIVER_RESULT',
    });
  }
  return reason;
}

/**
 * A compensation's origin row and own row, and which of them went in: one `INSERT … RETURNING`, or
 * where the server has none (MySQL), one insert per row in the same transaction.
 */
async function insertCompensation(
  target: BarrierTarget,
  connection: BarrierConnection<unknown>,
  originRow: string[],
  ownRow: string[],
): Promise<{ own: boolean; origin: boolean }> {
  const statements = statementsOf(target);
  if (target.returning !== false && !serversWithoutReturning.has(target.dialect)) {
    try {
      const rows = await connection.select(statements.insertTwoReturning, [...originRow, ...ownRow]);
      const ops = rows.map((row) => row.op);
      if (rows.length > 2 || !ops.every((op) => op === originRow[3] || op === ownRow[3])) {
        throw new BarrierConfigError(`INSERT … RETURNING op returned ${JSON.stringify(rows)}`, { code: 'ERR_TXBARRIER_DRIVER_RESULT' });
      }
      return { own: ops.includes(ownRow[3]), origin: ops.includes(originRow[3]) };
    } catch (error) {
      if (!target.dialect.rejectsReturning(error)) throw error;
      // A MySQL server: its syntax error left the transaction as it was. Every later call in this
      // process takes the two-statement form at once.
      serversWithoutReturning.add(target.dialect);
    }
  }
  const origin = (await connection.execute(statements.insertOne, originRow)) === 1;
  const own = (await connection.execute(statements.insertOne, ownRow)) === 1;
  return { own, origin };
}

/** Dialects whose server was seen rejecting `INSERT … RETURNING` in this process. */
const serversWithoutReturning = new WeakSet<Dialect>();

interface Statements {
  insertOne: string;
  insertTwoReturning: string;
  selectReason: string;
}

/** The SQL of one table in one placeholder style, built once: executors are made per transaction, so the cache is keyed by what they share. */
const statementCache = new WeakMap<Dialect, Map<string, Statements>>();

function statementsOf({ dialect, table, placeholder }: BarrierTarget): Statements {
  let byTable = statementCache.get(dialect);
  if (!byTable) statementCache.set(dialect, (byTable = new Map()));
  const key = placeholder ? `${table} ${placeholder(1)}` : table;
  let statements = byTable.get(key);
  if (!statements) {
    statements = {
      insertOne: dialect.insertRows(table, 1, placeholder),
      insertTwoReturning: dialect.insertRowsReturning(table, 2, placeholder),
      selectReason: dialect.selectReason(table, placeholder),
    };
    byTable.set(key, statements);
  }
  return statements;
}

/**
 * Rethrows what `run` throws as a call throws it: the business function's own error unchanged, a
 * database conflict (deadlock, serialization failure, lock timeout, busy file) as `BarrierOngoing`,
 * and a missing barrier table as a `BarrierConfigError` that names it and the fix.
 */
function withCallErrors<T>(target: CallTarget, run: () => PromiseLike<T>): Promise<T> {
  // A reaction rather than an async frame: one promise per call instead of a frame's promise and its await.
  let running: PromiseLike<T>;
  try {
    running = run();
  } catch (thrown) {
    return Promise.reject(callError(target, thrown));
  }
  return Promise.resolve(running).then(undefined, (thrown: unknown) => {
    throw callError(target, thrown);
  });
}

function callError(target: CallTarget, error: unknown): unknown {
  if (error instanceof BusinessError) return error.error;
  if (error instanceof BarrierError) return error;
  if (target.dialect.isRetryable(error)) return new BarrierOngoing('database conflict; retry later', { cause: error });
  if (target.dialect.isMissingTable(error)) {
    return new BarrierConfigError(
      `the barrier table ${target.table} does not exist: call store.ensureSchema() at start-up, or run ` +
        `txbarrier schema <url> --apply --table ${target.table}`,
      { code: 'ERR_TXBARRIER_NO_TABLE', cause: error },
    );
  }
  return error;
}
