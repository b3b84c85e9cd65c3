/**
 * DTM's wire protocol, once, for every front door: the parts of a request → `Barrier`; how a
 * branch ended → a `Verdict` (transport-neutral: DTM's result and the answer's fields); a verdict →
 * an HTTP status and body; and the reading of a reply, as a coordinator does it. Imports no framework:
 * each front (`txbarrier/express`, `/fastify`, `/hono`, `/koa`) is a thin translation of this module.
 */
import { Barrier, type BarrierResult } from '../barrier/barrier.js';
import { BarrierDuplicateMessage, BarrierFailure, BarrierInputError, BarrierOngoing, type FieldProblem } from '../errors.js';
import { type FieldReader, headerReader, parseFields, queryReader, WIRE_NAMES } from '../barrier/fields.js';
import type { Logger, Outcome } from '../observe/hooks.js';
import type { BarrierStore, BarrierTarget } from '../transaction/store.js';

/** What DTM reads from an answer: the branch succeeded, failed for good, or must be asked again later. */
export type DtmResult = 'SUCCESS' | 'FAILURE' | 'ONGOING';

/** The parts of a request DTM's protocol reads, whatever framework carried it. */
export interface RequestParts {
  /** The query string as the client sent it, still percent-encoded (with or without `?`; `''` if none). */
  query: string;
  /** The headers (or gRPC metadata): fetch `Headers`, or an object of names to values, names in any case. */
  headers: Headers | Record<string, unknown>;
}

/**
 * DTM's reading of a branch request: the query when it names any of the four fields, else the
 * `dtm-*` headers. Throws `BarrierInputError` naming every bad field.
 */
export function barrierOf({ query, headers }: RequestParts): Barrier {
  if (!names(queryReader(query)) && names(headerReader(headers))) return Barrier.fromHeaders(headers);
  return Barrier.fromQuery(query);
}

/** DTM's key of a message's local transaction, which a check-back may leave out. */
const CHECK_BACK_DEFAULTS: Record<string, string> = { trans_type: 'msg', branch_id: '00', op: 'msg' };

/**
 * The message a check-back asks about: named by `gid` alone (query, else `dtm-gid`), or by DTM's
 * four fields, then read like any barrier (`runCheckBack` refuses one that is not a `msg` barrier).
 * Throws `BarrierInputError` naming every bad field.
 */
export function checkBackBarrierOf(parts: RequestParts): Barrier {
  const query = queryReader(parts.query);
  const headers = headerReader(parts.headers);
  const named = (read: FieldReader) => WIRE_NAMES.some((name) => name !== 'gid' && read(name) !== undefined);
  if (named(query) || named(headers)) return barrierOf(parts);
  const gid = query('gid') ?? headers('gid');
  return Barrier.from(parseFields((name) => (name === 'gid' ? gid : CHECK_BACK_DEFAULTS[name])));
}

function names(read: FieldReader): boolean {
  return WIRE_NAMES.some((name) => read(name) !== undefined);
}

/**
 * How a branch request ended, before any transport: DTM's result and the fields of the answer
 * (`outcome`, `value`, `message`, `state`), or a request that named no valid branch (`INVALID`),
 * or an unexpected error (`ERROR`, whose `error` must be reported and never sent).
 */
export type Verdict =
  | { readonly result: DtmResult; readonly fields: Readonly<Record<string, unknown>> }
  | { readonly result: 'INVALID'; readonly fields: { readonly error: 'invalid barrier request'; readonly problems: readonly FieldProblem[] } }
  | { readonly result: 'ERROR'; readonly fields: { readonly error: string }; readonly error: unknown };

/** Success, with the barrier's outcome, and the handler's value only when it applied. */
export function verdictOfResult(result: BarrierResult<unknown>): Verdict {
  return { result: 'SUCCESS', fields: result.outcome === 'applied' ? result : { outcome: result.outcome } };
}

/**
 * The verdict for a thrown error: the protocol's for the barrier's errors; `ONGOING` for a database
 * conflict from the handler's own SQL when `target` says it is one (it rolled back; a retry resolves
 * it); `ERROR` for anything else.
 */
export function verdictOfError(error: unknown, target?: Pick<BarrierTarget, 'dialect'>): Verdict {
  if (error instanceof BarrierInputError) {
    return { result: 'INVALID', fields: { error: 'invalid barrier request', problems: error.problems } };
  }
  if (error instanceof BarrierFailure) return { result: 'FAILURE', fields: { message: error.message } };
  if (error instanceof BarrierOngoing) return { result: 'ONGOING', fields: {} };
  if (error instanceof BarrierDuplicateMessage) {
    // The message's fate is already sealed: committed goes on, rolled back dies.
    return error.committed
      ? { result: 'SUCCESS', fields: { outcome: 'duplicate' } }
      : { result: 'FAILURE', fields: { message: error.message } };
  }
  if (target?.dialect.isRetryable(error)) return { result: 'ONGOING', fields: {} };
  return { result: 'ERROR', fields: { error: 'internal error' }, error };
}

/**
 * Runs `handler` under the request's barrier (`barrier` is called inside, so a bad request is an
 * `INVALID` verdict) and classifies how it ended. Never rejects.
 */
export async function runBranch<Tx>(
  store: BarrierStore<Tx>,
  barrier: () => Barrier,
  handler: (tx: Tx) => unknown,
): Promise<Verdict> {
  try {
    return verdictOfResult(await barrier().call(store, handler));
  } catch (error) {
    return verdictOfError(error, store);
  }
}

/**
 * The 2-phase message check-back: `SUCCESS` if the local transaction committed, `FAILURE` if it
 * rolled back (or never ran, and now never will), `ONGOING` if the database could not tell in time,
 * `INVALID` for a barrier that is not a `msg` one (a middleware may have read a branch's). Never rejects.
 */
export async function runCheckBack(store: BarrierStore<unknown>, barrier: () => Barrier): Promise<Verdict> {
  try {
    const message = barrier();
    if (message.transType !== 'msg') {
      throw new BarrierInputError([{ field: 'trans_type', problem: 'must be msg for a check-back' }]);
    }
    const state = await message.queryPrepared(store);
    return state === 'committed'
      ? { result: 'SUCCESS', fields: { state } }
      : { result: 'FAILURE', fields: { state, message: `the local transaction of ${message.gid} rolled back` } };
  } catch (error) {
    return verdictOfError(error);
  }
}

/** An answer as HTTP carries it. */
export interface HttpAnswer {
  status: HttpStatus;
  /** DTM's result, also the body's `dtm_result`; absent for a 400 or a 500. */
  dtmResult?: DtmResult;
  /** JSON text, with `FAILURE`/`ONGOING` escaped everywhere but in `dtm_result`. */
  body: string;
  /** For a 500: what went wrong, to report (`reportError`); never in the body. */
  error?: unknown;
}

/** The statuses a front answers with. */
export type HttpStatus = 200 | 400 | 409 | 425 | 500;

/** The HTTP status of each verdict: DTM reads 200, 409 and 425; a coordinator retries anything else with backoff. */
export const HTTP_STATUS: Readonly<Record<Verdict['result'], HttpStatus>> = {
  SUCCESS: 200,
  FAILURE: 409,
  ONGOING: 425,
  INVALID: 400,
  ERROR: 500,
};

/**
 * The HTTP answer for a verdict. DTM reads a body containing `FAILURE` or `ONGOING` anywhere as
 * that result (whatever the status), so those words are escaped (`\u0046AILURE`) everywhere except in
 * `dtm_result` itself: a JSON parser reads the same strings, a substring search no longer finds them.
 * A value JSON cannot carry (a BigInt, a cycle) becomes a 500; the work is committed and the retry
 * answers `duplicate`.
 */
export function httpAnswer(verdict: Verdict): HttpAnswer {
  let json: string;
  try {
    json = JSON.stringify(verdict.fields);
  } catch (error) {
    return httpAnswer({ result: 'ERROR', fields: { error: 'the handler returned a value JSON cannot carry' }, error });
  }
  json = json.replace(/FAILURE|ONGOING/g, (word) => `\\u00${word.charCodeAt(0).toString(16)}${word.slice(1)}`);
  const status = HTTP_STATUS[verdict.result];
  if (verdict.result === 'ERROR') return { status, body: json, error: verdict.error };
  if (verdict.result === 'INVALID') return { status, body: json };
  const body = `{"dtm_result":"${verdict.result}"${json === '{}' ? '}' : `,${json.slice(1)}`}`;
  return { status, dtmResult: verdict.result, body };
}

/** The `content-type` of every answer. */
export const CONTENT_TYPE = 'application/json; charset=utf-8';

/** What every front's `barrierRoute` and `barrierMiddleware` accept; `Req` is that framework's request or context. */
export interface FrontOptions<Req> {
  /**
   * Where the barrier comes from, for coordinators other than DTM (a header scheme, a message
   * envelope); throw `BarrierInputError` for bad input. Defaults to DTM's reading (`barrierOf`):
   * the raw query string, else the `dtm-*` headers.
   */
  extract?: (request: Req) => Barrier;
  /**
   * Receives each error answered with 500 (never a stack trace or SQL in the body). Must not throw.
   * Defaults to the store's `logger` (`error` level), else a process warning (`TxbarrierWarning`).
   */
  onError?: (error: unknown, request: Req) => void;
}

/**
 * Reports an error that was answered 500, so it never vanishes: to `onError` if given, else to the
 * logger's `error`, else as a process warning. A throwing hook or logger becomes a process warning.
 */
export function reportError<Req>(error: unknown, request: Req, onError: FrontOptions<Req>['onError'], logger?: Logger): void {
  try {
    if (onError) return onError(error, request);
    if (logger?.error) return logger.error({ err: error }, 'txbarrier: answered 500');
  } catch (reportFailed) {
    process.emitWarning(`txbarrier: ${onError ? 'onError hook' : 'logger'} threw: ${String(reportFailed)}`, 'TxbarrierHookWarning');
  }
  process.emitWarning(`txbarrier: answered 500: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 'TxbarrierWarning');
}

/** How a coordinator reads one reply. */
export type ReplyStatus = 'success' | 'failure' | 'ongoing' | 'error';

export interface BranchReply {
  status: ReplyStatus;
  /** The body's `dtm_result`, when it has one. */
  dtmResult?: DtmResult;
  /** The barrier's outcome, when the body's `outcome` names one. */
  outcome?: Outcome;
}

const DTM_RESULTS: readonly string[] = ['SUCCESS', 'FAILURE', 'ONGOING'] satisfies DtmResult[];
const OUTCOMES: readonly string[] = ['applied', 'duplicate', 'null-compensation', 'dangling'] satisfies Outcome[];

/**
 * Reads a branch's HTTP reply as DTM does: 425 or the word `ONGOING` anywhere in the body is
 * ongoing, then 409 or the word `FAILURE` is failure, then 200 is success, and anything else an
 * error (retried with backoff).
 */
export function readReply(status: number, body: string): BranchReply {
  const verdict: ReplyStatus =
    status === 425 || body.includes('ONGOING')
      ? 'ongoing'
      : status === 409 || body.includes('FAILURE')
        ? 'failure'
        : status === 200
          ? 'success'
          : 'error';
  const json = parseObject(body);
  return {
    status: verdict,
    ...(typeof json?.dtm_result === 'string' && DTM_RESULTS.includes(json.dtm_result) ? { dtmResult: json.dtm_result as DtmResult } : {}),
    ...outcomeIn(json),
  };
}

/** The barrier outcome a handler's value or a reply's body names (`{ outcome }`), if any. */
export function outcomeIn(value: unknown): { outcome?: Outcome } {
  const outcome = (value as { outcome?: unknown } | null | undefined)?.outcome;
  return typeof outcome === 'string' && OUTCOMES.includes(outcome) ? { outcome: outcome as Outcome } : {};
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
