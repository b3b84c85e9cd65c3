/**
 * `idempotentRoute` for Koa. Koa parses no bodies, so the route reads the request's bytes itself
 * and leaves them in `ctx.request.rawBody` for the handler; behind a body parser that already
 * read them (koa-bodyparser sets `rawBody` as text) it hashes that text, else the canonical JSON
 * of `ctx.request.body`.
 */
import { bodyForFingerprint, idempotencyGuard, type IdempotencyOptions, type IdempotentResponse } from '../../../src/idempotency/guard.js';
import type { BarrierStore } from '../../../src/transaction/store.js';

/** The part of a Koa `Context` the route uses. */
export interface IdempotentKoaContext {
  method: string;
  originalUrl: string;
  req: AsyncIterable<Buffer | string> & { readableEnded?: boolean; complete?: boolean };
  request: { headers: Record<string, string | string[] | undefined>; body?: unknown; rawBody?: Buffer | string };
  status: number;
  body: unknown;
  set(name: string, value: string): void;
}

/**
 * Koa middleware that runs `handler` at most once per `Idempotency-Key` and scope, inside the
 * store's transaction, and commits its response with its work. Repeats get the stored response
 * (marked `Idempotent-Replayed: true`); refusals are RFC 9457 problems (400, 409, 422). What the
 * handler or the database throws propagates to Koa's error handling, and nothing is stored.
 */
export function idempotentRoute<Tx, C extends IdempotentKoaContext>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, ctx: C) => Promise<IdempotentResponse> | IdempotentResponse,
  options: IdempotencyOptions<C>,
) {
  const guard = idempotencyGuard<Tx, C>(store, options);
  return async (ctx: C): Promise<void> => {
    if (ctx.request.rawBody === undefined && ctx.request.body === undefined) {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      ctx.request.rawBody = Buffer.concat(chunks);
    }
    const request = {
      method: ctx.method,
      target: ctx.originalUrl,
      key: ctx.request.headers['idempotency-key'],
      body: bodyForFingerprint(ctx.request.rawBody, ctx.request.body),
    };
    const answer = await guard.respond(request, ctx, (tx) => handler(tx, ctx));
    ctx.status = answer.status;
    for (const [name, value] of Object.entries(answer.headers)) ctx.set(name, value);
    // An empty Buffer rather than null: a null body would make Koa answer 204 or the status text.
    ctx.body = Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength);
  };
}
