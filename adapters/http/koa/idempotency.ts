/**
 * `idempotentRoute` for Koa. Koa parses no bodies, so once the key is known to be good the route
 * reads at most `maxBodyBytes` of the request itself and leaves the bytes in `ctx.request.rawBody`
 * for the handler; behind a body parser that already read them (koa-bodyparser sets `rawBody` as
 * text, within its own limits) it hashes that text, else the canonical JSON of `ctx.request.body`.
 */
import type { ParameterizedContext } from 'koa';
import {
  bodyForFingerprint,
  bodyLimitOf,
  type IdempotencyBodyOptions,
  idempotencyGuard,
  type IdempotencyOptions,
  type IdempotentResponse,
  readBody,
} from '../../../src/idempotency/guard.js';
import type { BarrierStore } from '../../../src/transaction/store.js';

/** What a body parser in front may have left on the request, and where the route leaves the bytes. */
export interface ParsedRequest {
  body?: unknown;
  rawBody?: Buffer | string;
}

/** What the handler receives: Koa's context, with the body's bytes the route read (or a body parser's text) in `ctx.request.rawBody`. */
export type IdempotentContext<C extends ParameterizedContext = ParameterizedContext> = C & { request: ParsedRequest };

/**
 * Koa middleware that runs `handler` at most once per `Idempotency-Key` and scope, inside the
 * store's transaction, and commits its response with its work. Repeats get the stored response
 * (marked `Idempotent-Replayed: true`); refusals are RFC 9457 problems (400, 409, 422, 413 for a
 * body over `maxBodyBytes`), a busy database 503. What the handler or the database throws
 * propagates to Koa's error handling, and nothing is stored.
 */
export function idempotentRoute<Tx, C extends ParameterizedContext = ParameterizedContext>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, ctx: IdempotentContext<C>) => Promise<IdempotentResponse> | IdempotentResponse,
  options: IdempotencyOptions<C> & IdempotencyBodyOptions,
) {
  const guard = idempotencyGuard<Tx, C>(store, options);
  const limit = bodyLimitOf(options);
  return async (ctx: C): Promise<void> => {
    const parsed = ctx.request as ParsedRequest;
    const body = async () => {
      if (parsed.rawBody === undefined && parsed.body === undefined) {
        try {
          parsed.rawBody = await readBody(ctx.req, ctx.get('content-length'), limit);
        } catch (error) {
          // Discard the rest as it comes (Node keeps the connection for the 413 and the next request).
          ctx.req.resume();
          throw error;
        }
      }
      return bodyForFingerprint(parsed.rawBody, parsed.body);
    };
    const request = { method: ctx.method, target: ctx.originalUrl, key: ctx.request.headers['idempotency-key'], body };
    const answer = await guard.respond(request, ctx, (tx) => handler(tx, ctx as IdempotentContext<C>));
    ctx.status = answer.status;
    for (const [name, value] of Object.entries(answer.headers)) ctx.set(name, value);
    // An empty Buffer rather than null: a null body would make Koa answer 204 or the status text.
    ctx.body = Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength);
  };
}
