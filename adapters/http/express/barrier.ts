import type { Barrier, BarrierStore } from '../../../src/index.js';
import {
  barrierOf,
  checkBackBarrierOf,
  CONTENT_TYPE,
  type FrontOptions,
  httpAnswer,
  reportError,
  type RequestParts,
  runBranch,
  runCheckBack,
  type Verdict,
  verdictOfError,
} from '../../../src/protocol/dtm.js';

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

/** `extract` and `onError`, as on every front (see `FrontOptions`). */
export type BarrierOptions = FrontOptions<BarrierRequest>;

/** DTM's reading: the raw query string when it names any of the four fields, else the `dtm-*` headers. */
export const dtmExtractor: BarrierExtractor = (req) => barrierOf(partsOf(req));

/**
 * Parses the barrier of every request it sees into `req.barrier`. A request whose fields are
 * missing or bad gets 400 with each bad field named, and goes no further.
 */
export function barrierMiddleware(options: BarrierOptions = {}) {
  const extract = options.extract ?? dtmExtractor;
  return (req: BarrierRequest, res: BarrierResponse, next: () => void): void => {
    try {
      req.barrier = extract(req);
    } catch (error) {
      return answer(res, verdictOfError(error), req, options);
    }
    next();
  };
}

/**
 * An Express handler that runs `handler` under the request's barrier and answers as DTM reads it:
 * 200 `SUCCESS` for applied and every suppressed outcome (with the handler's value when applied),
 * 409 `FAILURE` for `BarrierFailure`, 425 `ONGOING` for `BarrierOngoing` and for a database
 * conflict thrown by the handler's own SQL (a retry resolves it), 400 for a bad barrier, 500 for
 * anything else (reported: see `onError`). Works with or without `barrierMiddleware` in front.
 * Never rejects, so Express 4, which ignores returned promises, cannot turn an error into an
 * unhandled rejection.
 */
export function barrierRoute<Tx, T, Req extends BarrierRequest = BarrierRequest>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, req: RouteRequest<Req>) => Promise<T> | T,
  options: BarrierOptions = {},
) {
  const extract = options.extract ?? dtmExtractor;
  return async (req: Req, res: BarrierResponse): Promise<void> => {
    const verdict = await runBranch(store, () => (req.barrier ??= extract(req)), (tx) => handler(tx, req as RouteRequest<Req>));
    answer(res, verdict, req, options, store);
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
    const verdict = await runCheckBack(store, () => req.barrier ?? checkBackBarrierOf(partsOf(req)));
    answer(res, verdict, req, options, store);
  };
}

function answer(res: BarrierResponse, verdict: Verdict, req: BarrierRequest, options: BarrierOptions, store?: BarrierStore<unknown>): void {
  const { status, body, error } = httpAnswer(verdict);
  if (status === 500) reportError(error, req, options.onError, store?.hooks.logger);
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader('content-type', CONTENT_TYPE);
  res.end(body);
}

/**
 * The raw query string as the client sent it, read the same way whatever query parser the app
 * configured (Express 4's `qs` would turn `gid[a]=1` into an object, and a disabled parser leaves
 * nothing), and the headers.
 */
function partsOf(req: BarrierRequest): RequestParts {
  const url = req.originalUrl ?? req.url ?? '';
  const start = url.indexOf('?');
  return { query: start < 0 ? '' : url.slice(start + 1), headers: req.headers };
}

// Idempotency keys for plain HTTP routes, beside the barrier's routes (also `txbarrier/idempotency/express`).
export { idempotentRoute, keepRawBody } from './idempotency.js';
