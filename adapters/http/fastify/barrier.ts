/**
 * `txbarrier/fastify`: DTM's protocol as a Fastify 5 plugin and handlers. The plugin decorates
 * every request with `barrier`; `barrierRoute` and `queryPreparedRoute` are route handlers. Fastify
 * parses and validates the body (your schemas) before any of this runs, and answers a body it
 * rejects as it always does.
 */
import type { FastifyBaseLogger, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
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

declare module 'fastify' {
  interface FastifyRequest {
    /** The branch this request names: set by `barrierPlugin`, or by `barrierRoute` itself; `null` before. */
    barrier: Barrier | null;
  }
}

/** What a `barrierRoute` handler receives: Fastify's request (with your route's types), its barrier always present. */
export type RouteRequest<Req extends FastifyRequest = FastifyRequest> = Req & { barrier: Barrier };

/** `extract` and `onError`, as on every front (see `FrontOptions`); `onError` defaults to the store's logger, then Fastify's. */
export type BarrierOptions = FrontOptions<FastifyRequest>;

/** DTM's reading: the raw query string when it names any of the four fields, else the `dtm-*` headers. */
export const dtmExtractor = (request: FastifyRequest): Barrier => barrierOf(partsOf(request));

/**
 * Reads the barrier of every request in the scope it is registered in into `request.barrier`,
 * after Fastify parsed and validated the body (a `preHandler` hook). A request whose fields are
 * missing or bad gets 400 with each bad field named, and goes no further.
 */
export const barrierPlugin: FastifyPluginCallback<BarrierOptions> = (fastify, options, done) => {
  const extract = options.extract ?? dtmExtractor;
  if (!fastify.hasRequestDecorator('barrier')) fastify.decorateRequest('barrier', null);
  fastify.addHook('preHandler', (request, reply, next) => {
    try {
      request.barrier = extract(request);
    } catch (error) {
      return void answer(reply, verdictOfError(error), request, options);
    }
    next();
  });
  done();
};
// As fastify-plugin does: the hook and decorator belong to the scope that registers the plugin.
Object.assign(barrierPlugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'txbarrier' });

/**
 * A Fastify handler that runs `handler` under the request's barrier and answers as DTM reads it:
 * 200 `SUCCESS` for applied and every suppressed outcome (with the handler's value when applied),
 * 409 `FAILURE` for `BarrierFailure`, 425 `ONGOING` for `BarrierOngoing` and for a database conflict
 * from the handler's own SQL, 400 for a bad barrier, 500 for anything else (reported, never sent).
 * Works with or without `barrierPlugin`. Give the route's types as usual
 * (`app.post<{ Body: Transfer }>(path, { schema }, barrierRoute(store, (tx, req) => …))`).
 */
export function barrierRoute<Tx, T, Req extends FastifyRequest = FastifyRequest>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, request: RouteRequest<Req>) => Promise<T> | T,
  options: BarrierOptions = {},
) {
  const extract = options.extract ?? dtmExtractor;
  return async (request: Req, reply: FastifyReply): Promise<FastifyReply> => {
    const verdict = await runBranch(store, () => (request.barrier ??= extract(request)), (tx) => handler(tx, request as RouteRequest<Req>));
    return answer(reply, verdict, request, options, store);
  };
}

/**
 * The 2-phase message check-back (DTM's `QueryPrepared` URL): 200 `SUCCESS` if the local
 * transaction of `gid` committed, 409 `FAILURE` if it rolled back (or never ran, and now never
 * will), 425 `ONGOING` if the database could not tell in time. Takes DTM's full query or a `gid` alone.
 */
export function queryPreparedRoute<Tx>(store: BarrierStore<Tx>, options: Pick<BarrierOptions, 'onError'> = {}) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const verdict = await runCheckBack(store, () => request.barrier ?? checkBackBarrierOf(partsOf(request)));
    return answer(reply, verdict, request, options, store);
  };
}

function answer(reply: FastifyReply, verdict: Verdict, request: FastifyRequest, options: BarrierOptions, store?: BarrierStore<unknown>): FastifyReply {
  const { status, body, error } = httpAnswer(verdict);
  if (status === 500) reportError(error, request, options.onError, store?.hooks.logger ?? loggingLogger(request.log));
  return reply.code(status).header('content-type', CONTENT_TYPE).send(body);
}

const SILENT = new Set([undefined, 'silent', 'fatal']);

/** Fastify's logger, when it is on and logs errors: `logger: false` gives one that drops everything. */
function loggingLogger(log: FastifyBaseLogger): Logger | undefined {
  return SILENT.has(log.level) ? undefined : log;
}

/** The raw query string (whatever `querystringParser` the app set) and the headers. */
function partsOf(request: FastifyRequest): RequestParts {
  const url = request.raw.url ?? request.url;
  const start = url.indexOf('?');
  return { query: start < 0 ? '' : url.slice(start + 1), headers: request.headers };
}

// Idempotency keys for plain HTTP routes, beside the barrier's routes (also `txbarrier/idempotency/fastify`).
export { idempotentRoute } from './idempotency.js';
