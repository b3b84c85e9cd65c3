/**
 * `txbarrier/koa`: DTM's protocol as Koa middleware. `barrierMiddleware` puts the barrier in
 * `ctx.state.barrier`; `barrierRoute` and `queryPreparedRoute` answer the request (mount them on a
 * path with your router). Koa has no body parser of its own: use yours in front, so a body it
 * rejects gets its answer before any barrier work.
 */
import type { Middleware, Next, ParameterizedContext } from 'koa';
import type { Barrier, BarrierStore, Logger } from '../../../src/index.js';
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

/** The state the barrier adds to `ctx.state`. */
export interface BarrierState {
  barrier: Barrier;
}

/** Any Koa context, whatever state and custom properties it carries. */
export type KoaContext = ParameterizedContext;

/** What a `barrierRoute` handler receives: the context, with `ctx.state.barrier` always present. */
export type RouteContext<Ctx extends KoaContext = KoaContext> = Ctx & { state: BarrierState };

/**
 * `extract` and `onError`, as on every front (see `FrontOptions`); `onError` defaults to the
 * store's logger, then the app's `error` event (which Koa prints unless `app.silent`).
 */
export type BarrierOptions = FrontOptions<KoaContext>;

/** DTM's reading: the raw query string when it names any of the four fields, else the `dtm-*` headers. */
export const dtmExtractor = (ctx: KoaContext): Barrier => barrierOf(partsOf(ctx));

/**
 * Reads the barrier of every request it sees into `ctx.state.barrier`. A request whose fields are
 * missing or bad gets 400 with each bad field named, and goes no further.
 */
export function barrierMiddleware(options: BarrierOptions = {}): Middleware<Partial<BarrierState>> {
  const extract = options.extract ?? dtmExtractor;
  return async (ctx, next) => {
    try {
      ctx.state.barrier = extract(ctx);
    } catch (error) {
      return answer(ctx, verdictOfError(error), options);
    }
    await next();
  };
}

/**
 * Koa middleware that runs `handler` under the request's barrier and answers as DTM reads it:
 * 200 `SUCCESS` for applied and every suppressed outcome (with the handler's value when applied),
 * 409 `FAILURE` for `BarrierFailure`, 425 `ONGOING` for `BarrierOngoing` and for a database conflict
 * from the handler's own SQL, 400 for a bad barrier, 500 for anything else (reported, never sent).
 * Answers the request and does not call `next`. Works with or without `barrierMiddleware`.
 */
export function barrierRoute<Tx, T, Ctx extends KoaContext = KoaContext>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, ctx: RouteContext<Ctx>) => Promise<T> | T,
  options: BarrierOptions = {},
) {
  const extract = options.extract ?? dtmExtractor;
  return async (ctx: Ctx, _next?: Next): Promise<void> => {
    const state: Partial<BarrierState> = ctx.state;
    const verdict = await runBranch(store, () => (state.barrier ??= extract(ctx)), (tx) => handler(tx, ctx as RouteContext<Ctx>));
    answer(ctx, verdict, options, store);
  };
}

/**
 * The 2-phase message check-back (DTM's `QueryPrepared` URL): 200 `SUCCESS` if the local
 * transaction of `gid` committed, 409 `FAILURE` if it rolled back (or never ran, and now never
 * will), 425 `ONGOING` if the database could not tell in time. Takes DTM's full query or a `gid` alone.
 */
export function queryPreparedRoute<Tx>(store: BarrierStore<Tx>, options: Pick<BarrierOptions, 'onError'> = {}) {
  return async (ctx: KoaContext, _next?: Next): Promise<void> => {
    const state: Partial<BarrierState> = ctx.state;
    answer(ctx, await runCheckBack(store, () => state.barrier ?? checkBackBarrierOf(partsOf(ctx))), options, store);
  };
}

function answer(ctx: KoaContext, verdict: Verdict, options: BarrierOptions, store?: BarrierStore<unknown>): void {
  const { status, body, error } = httpAnswer(verdict);
  if (status === 500) reportError(error, ctx, options.onError, store?.hooks.logger ?? appErrorEvent(ctx));
  ctx.status = status;
  ctx.type = CONTENT_TYPE;
  ctx.body = body;
}

/** Koa's own way to report: its `error` event, which prints to stderr unless the app has listeners or is silent. */
function appErrorEvent(ctx: KoaContext): Logger | undefined {
  const { app } = ctx;
  if (app.listenerCount('error') === 0) return undefined;
  return { error: ({ err }: { err?: unknown } = {}) => void app.emit('error', err, ctx) };
}

/** The raw query string (`ctx.querystring` is still percent-encoded) and the headers. */
function partsOf(ctx: KoaContext): RequestParts {
  return { query: ctx.querystring, headers: ctx.headers };
}

// Idempotency keys for plain HTTP routes, beside the barrier's routes (also `txbarrier/idempotency/koa`).
export { idempotentRoute } from './idempotency.js';
