/**
 * `idempotentRoute` for Hono. The fingerprint hashes the body bytes as received, read with
 * `c.req.arrayBuffer()`; Hono keeps them, so the handler can still call `c.req.json()`.
 */
import { idempotencyGuard, type IdempotencyOptions, type IdempotentResponse } from '../../../src/idempotency/guard.js';
import type { BarrierStore } from '../../../src/transaction/store.js';

/** The part of a Hono `Context` the route uses. */
export interface IdempotentHonoContext {
  req: {
    method: string;
    url: string;
    header(name: string): string | undefined;
    arrayBuffer(): Promise<ArrayBuffer>;
  };
}

/**
 * A Hono handler that runs `handler` at most once per `Idempotency-Key` and scope, inside the
 * store's transaction, and commits its response with its work. Repeats get the stored response
 * (marked `Idempotent-Replayed: true`); refusals are RFC 9457 problems (400, 409, 422). What the
 * handler or the database throws is rethrown to Hono's `onError`, and nothing is stored.
 */
export function idempotentRoute<Tx, C extends IdempotentHonoContext>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, c: C) => Promise<IdempotentResponse> | IdempotentResponse,
  options: IdempotencyOptions<C>,
) {
  const guard = idempotencyGuard<Tx, C>(store, options);
  return async (c: C): Promise<Response> => {
    const url = new URL(c.req.url);
    const request = {
      method: c.req.method,
      target: url.pathname + url.search,
      key: c.req.header('idempotency-key'),
      body: new Uint8Array(await c.req.arrayBuffer()),
    };
    const answer = await guard.respond(request, c, (tx) => handler(tx, c));
    const empty = answer.body.byteLength === 0 || answer.status === 204 || answer.status === 304;
    return new Response(empty ? null : answer.body, { status: answer.status, headers: answer.headers });
  };
}
