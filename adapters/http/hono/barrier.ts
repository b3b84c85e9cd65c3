/**
 * `txbarrier/hono`: DTM's protocol as Hono middleware and handlers, on Web-standard `Request` and
 * `Response` (Node through `@hono/node-server`, Bun, Deno, workers with a store that runs there).
 * The barrier is a typed context variable: `c.get('barrier')`.
 */
import type { Context, MiddlewareHandler } from 'hono';
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

/** The context variables the barrier adds; combine with your own (`Hono<BarrierEnv & MyEnv>`). */
export interface BarrierEnv {
  Variables: { barrier: Barrier };
}

/** `extract` and `onError`, as on every front (see `FrontOptions`). */
export type BarrierOptions = FrontOptions<Context>;

/** DTM's reading: the raw query string when it names any of the four fields, else the `dtm-*` headers. */
export const dtmExtractor = (c: Context): Barrier => barrierOf(partsOf(c));

/**
 * Reads the barrier of every request it sees into `c.get('barrier')`. A request whose fields are
 * missing or bad gets 400 with each bad field named, and goes no further.
 */
export function barrierMiddleware(options: BarrierOptions = {}): MiddlewareHandler<BarrierEnv> {
  const extract = options.extract ?? dtmExtractor;
  return async (c, next) => {
    try {
      c.set('barrier', extract(c));
    } catch (error) {
      return answer(c, verdictOfError(error), options);
    }
    await next();
  };
}

/**
 * A Hono handler that runs `handler` under the request's barrier and answers as DTM reads it:
 * 200 `SUCCESS` for applied and every suppressed outcome (with the handler's value when applied),
 * 409 `FAILURE` for `BarrierFailure`, 425 `ONGOING` for `BarrierOngoing` and for a database conflict
 * from the handler's own SQL, 400 for a bad barrier, 500 for anything else (reported, never sent).
 * Works with or without `barrierMiddleware`. Hono reads the body lazily: put a validator in front
 * (`validator('json', …)`) for a malformed body to get its 400 before any barrier work. With an env
 * of your own, annotate the context: `barrierRoute(store, (tx, c: Context<MyEnv>) => …)`.
 */
export function barrierRoute<Tx, T, E extends BarrierEnv = BarrierEnv>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, c: Context<E>) => Promise<T> | T,
  options: BarrierOptions = {},
) {
  const extract = options.extract ?? dtmExtractor;
  return async (c: Context<E>): Promise<Response> => {
    const barrier = () => {
      if (c.var.barrier === undefined) c.set('barrier', extract(c));
      return c.var.barrier;
    };
    return answer(c, await runBranch(store, barrier, (tx) => handler(tx, c)), options, store);
  };
}

/**
 * The 2-phase message check-back (DTM's `QueryPrepared` URL): 200 `SUCCESS` if the local
 * transaction of `gid` committed, 409 `FAILURE` if it rolled back (or never ran, and now never
 * will), 425 `ONGOING` if the database could not tell in time. Takes DTM's full query or a `gid` alone.
 */
export function queryPreparedRoute<Tx>(store: BarrierStore<Tx>, options: Pick<BarrierOptions, 'onError'> = {}) {
  return async (c: Context<BarrierEnv>): Promise<Response> => {
    // The middleware's barrier when it ran; `c.var.barrier` is typed present, and is not before it.
    const barrier = () => c.var.barrier ?? checkBackBarrierOf(partsOf(c));
    return answer(c, await runCheckBack(store, barrier), options, store);
  };
}

function answer(c: Context, verdict: Verdict, options: BarrierOptions, store?: BarrierStore<unknown>): Response {
  const { status, body, error } = httpAnswer(verdict);
  if (status === 500) reportError(error, c, options.onError, store?.hooks.logger);
  return c.body(body, status, { 'content-type': CONTENT_TYPE });
}

/** The query string as sent (the URL keeps it percent-encoded) and the Web `Headers`. */
function partsOf(c: Context): RequestParts {
  const { url, headers } = c.req.raw;
  const start = url.indexOf('?');
  const end = url.indexOf('#', start);
  return { query: start < 0 ? '' : url.slice(start + 1, end < 0 ? undefined : end), headers };
}

// Idempotency keys for plain HTTP routes, beside the barrier's routes (also `txbarrier/idempotency/hono`).
export { idempotentRoute } from './idempotency.js';
