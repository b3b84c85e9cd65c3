import {
  Barrier,
  BarrierDuplicateMessage,
  BarrierFailure,
  BarrierInputError,
  BarrierOngoing,
  type BarrierStore,
} from '../src/index.js';
import { queryReader } from '../src/fields.js';

// A global augmentation rather than `declare module 'express-serve-static-core'`: it needs no
// import of Express's types, so it compiles for users without @types/express, and with them it
// merges into the `Express.Request` that every Express 4 and 5 `Request` extends.
declare global {
  namespace Express {
    interface Request {
      /** The branch this request names; set by `barrierMiddleware`, or by `barrierRoute` itself. */
      barrier?: Barrier;
    }
  }
}

/**
 * The part of an Express request the barrier reads (Express 4 and 5 both fit). It extends the
 * global `Express.Request`, so fields other middleware declare there (`req.user`, …) show up too.
 */
export interface BarrierRequest extends Express.Request {
  headers: Record<string, string | string[] | undefined>;
  url?: string;
  originalUrl?: string;
  // `any` as in Express's own types: their shapes are whatever the body parser and the path produced.
  body?: any;
  params?: Record<string, any>;
}

/** What a `barrierRoute` handler receives: the request, with its barrier always present. */
export type RouteRequest<Req extends BarrierRequest = BarrierRequest> = Req & { barrier: Barrier };

/** The part of a Node `ServerResponse` the adapter writes: nothing Express-specific. */
export interface BarrierResponse {
  statusCode: number;
  readonly headersSent: boolean;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/** Reads the barrier of a request; throws `BarrierInputError` for bad fields. */
export type BarrierExtractor = (req: BarrierRequest) => Barrier;

export interface BarrierOptions {
  /** Where the barrier comes from, for coordinators other than DTM (a header scheme, a message envelope). Default: the query, else the `dtm-*` headers. */
  extract?: BarrierExtractor;
  /** Receives each error answered with 500 (never a stack trace or SQL in the body). Must not throw. */
  onError?: (error: unknown, req: BarrierRequest) => void;
}

const QUERY_FIELDS = ['gid', 'trans_type', 'branch_id', 'op'] as const;

/** DTM's reading: the query when it has any of the four fields, else the `dtm-*` headers. */
export const dtmExtractor: BarrierExtractor = (req) => {
  const query = queryOf(req);
  const read = queryReader(query);
  const inQuery = QUERY_FIELDS.some((name) => read(name) !== undefined);
  const inHeaders = QUERY_FIELDS.some((name) => req.headers[`dtm-${name}`] !== undefined);
  return !inQuery && inHeaders ? Barrier.fromHeaders(req.headers) : Barrier.fromQuery(query);
};

/**
 * Parses the barrier of every request it sees into `req.barrier`. A request whose fields are
 * missing or bad gets 400 with each bad field named, and goes no further.
 */
export function barrierMiddleware(options: BarrierOptions = {}) {
  const extract = options.extract ?? dtmExtractor;
  return (req: BarrierRequest, res: BarrierResponse, next: () => void): void => {
    let barrier: Barrier;
    try {
      barrier = extract(req);
    } catch (error) {
      return answerError(res, error, req, options);
    }
    req.barrier = barrier;
    next();
  };
}

/**
 * An Express handler that runs `handler` under the request's barrier and answers as DTM reads it:
 * 200 `SUCCESS` for applied and every suppressed outcome (with the handler's value when applied),
 * 409 `FAILURE` for `BarrierFailure`, 425 `ONGOING` for `BarrierOngoing` and for a database
 * conflict thrown by the handler's own SQL (a retry resolves it), 400 for a bad barrier, 500 for
 * anything else. Works with or without `barrierMiddleware` in front. Never rejects, so Express 4,
 * which ignores returned promises, cannot turn an error into an unhandled rejection.
 */
export function barrierRoute<Tx, T, Req extends BarrierRequest = BarrierRequest>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, req: RouteRequest<Req>) => Promise<T> | T,
  options: BarrierOptions = {},
) {
  const extract = options.extract ?? dtmExtractor;
  return async (req: Req, res: BarrierResponse): Promise<void> => {
    try {
      const barrier = (req.barrier ??= extract(req));
      const result = await barrier.call(store, (tx) => handler(tx, req as RouteRequest<Req>));
      send(res, 200, 'SUCCESS', result.outcome === 'applied' ? result : { outcome: result.outcome });
    } catch (error) {
      answerError(res, error, req, options, store);
    }
  };
}

/**
 * The 2-phase message check-back (DTM's `QueryPrepared` URL): did the local transaction of the
 * message `gid` commit? 200 `SUCCESS` if it did, 409 `FAILURE` if it rolled back (or never ran,
 * and now never will), 425 `ONGOING` if the database could not tell in time. Takes DTM's full
 * query (`trans_type=msg`) or only a `gid` (query or `dtm-gid` header).
 */
export function queryPreparedRoute<Tx>(store: BarrierStore<Tx>, options: Pick<BarrierOptions, 'onError'> = {}) {
  return async (req: BarrierRequest, res: BarrierResponse): Promise<void> => {
    try {
      const barrier = req.barrier ?? messageBarrier(req);
      if (barrier.transType !== 'msg') {
        throw new BarrierInputError([{ field: 'trans_type', problem: 'must be msg for a check-back' }]);
      }
      const state = await barrier.queryPrepared(store);
      if (state === 'committed') send(res, 200, 'SUCCESS', { state });
      else send(res, 409, 'FAILURE', { state, message: `the local transaction of ${barrier.gid} rolled back` });
    } catch (error) {
      answerError(res, error, req, options);
    }
  };
}

/** A check-back names its message by `gid` alone, or by DTM's four fields (then checked like any barrier). */
function messageBarrier(req: BarrierRequest): Barrier {
  const read = queryReader(queryOf(req));
  const named = QUERY_FIELDS.some((name) => name !== 'gid' && (read(name) !== undefined || req.headers[`dtm-${name}`] !== undefined));
  // forMessage checks the gid like any field: missing, repeated or not a string is a 400.
  return named ? dtmExtractor(req) : Barrier.forMessage((read('gid') ?? req.headers['dtm-gid']) as string);
}

/**
 * The answer for a thrown error: the protocol's for the barrier's errors, 425 for a database
 * conflict from the handler's own SQL (it rolled back; a retry resolves it), a bare 500 for the rest.
 */
function answerError(
  res: BarrierResponse,
  error: unknown,
  req: BarrierRequest,
  options: BarrierOptions,
  store?: BarrierStore<unknown>,
): void {
  if (error instanceof BarrierInputError) {
    send(res, 400, undefined, { error: 'invalid barrier request', problems: error.problems });
  } else if (error instanceof BarrierFailure) {
    send(res, 409, 'FAILURE', { message: error.message });
  } else if (error instanceof BarrierOngoing) {
    send(res, 425, 'ONGOING', {});
  } else if (error instanceof BarrierDuplicateMessage) {
    // The message's fate is already sealed: committed goes on, rolled back dies.
    if (error.committed) send(res, 200, 'SUCCESS', { outcome: 'duplicate' });
    else send(res, 409, 'FAILURE', { message: error.message });
  } else if (store?.dialect.isRetryable(error)) {
    send(res, 425, 'ONGOING', {});
  } else {
    try {
      options.onError?.(error, req);
    } catch (hookError) {
      process.emitWarning(`txbarrier: onError hook threw: ${String(hookError)}`, 'TxbarrierHookWarning');
    }
    send(res, 500, undefined, { error: 'internal error' });
  }
}

type DtmResult = 'SUCCESS' | 'FAILURE' | 'ONGOING';

/**
 * Writes a JSON answer. DTM reads a body containing `FAILURE` or `ONGOING` anywhere as that result
 * (whatever the status), so those words are escaped (`\u0046AILURE`) everywhere except in
 * `dtm_result` itself: a JSON parser reads the same strings, a substring search no longer finds them.
 */
function send(res: BarrierResponse, status: number, result: DtmResult | undefined, fields: object): void {
  if (res.headersSent) return;
  let json: string;
  try {
    json = JSON.stringify(fields);
  } catch {
    // A value JSON cannot carry (a BigInt, a cycle). The work is committed; the retry answers `duplicate`.
    return send(res, 500, undefined, { error: 'the handler returned a value JSON cannot carry' });
  }
  json = json.replace(/FAILURE|ONGOING/g, (word) => `\\u00${word.charCodeAt(0).toString(16)}${word.slice(1)}`);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(result === undefined ? json : `{"dtm_result":"${result}"${json === '{}' ? '}' : `,${json.slice(1)}`}`);
}

/**
 * The raw query string of the request as the client sent it: read the same way whatever query
 * parser the app configured (Express 4's `qs` would turn `gid[a]=1` into an object, and a disabled
 * parser leaves nothing).
 */
function queryOf(req: BarrierRequest): string {
  const url = req.originalUrl ?? req.url ?? '';
  const start = url.indexOf('?');
  return start < 0 ? '' : url.slice(start + 1);
}
