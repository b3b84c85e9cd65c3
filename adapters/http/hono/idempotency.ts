/**
 * `idempotentRoute` for Hono. The route reads the body itself once the key is known to be good,
 * at most `maxBodyBytes` of it, and leaves it where `c.req.arrayBuffer()` finds it, so the handler
 * can still call `c.req.json()`; the fingerprint hashes those bytes as received.
 */
import type { Context } from 'hono';
import {
  bodyLimitOf,
  type IdempotencyBodyOptions,
  idempotencyGuard,
  type IdempotencyOptions,
  type IdempotentResponse,
  readBody,
} from '../../../src/idempotency/guard.js';
import type { BarrierStore } from '../../../src/transaction/store.js';

/**
 * A Hono handler that runs `handler` at most once per `Idempotency-Key` and scope, inside the
 * store's transaction, and commits its response with its work. Repeats get the stored response
 * (marked `Idempotent-Replayed: true`); refusals are RFC 9457 problems (400, 409, 422, 413 for a
 * body over `maxBodyBytes`), a busy database 503. What the handler or the database throws is
 * rethrown to Hono's `onError`, and nothing is stored. With an env of your own, annotate the
 * context: `idempotentRoute(store, async (tx, c: Context<MyEnv>) => …, options)`.
 */
export function idempotentRoute<Tx, C extends Context = Context>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, c: C) => Promise<IdempotentResponse> | IdempotentResponse,
  options: IdempotencyOptions<C> & IdempotencyBodyOptions,
) {
  const guard = idempotencyGuard<Tx, C>(store, options);
  const limit = bodyLimitOf(options);
  return async (c: C): Promise<Response> => {
    const url = new URL(c.req.url);
    const request = {
      method: c.req.method,
      target: url.pathname + url.search,
      key: c.req.header('idempotency-key'),
      body: () => bodyOf(c, limit),
    };
    const answer = await guard.respond(request, c, (tx) => handler(tx, c));
    const empty = answer.body.byteLength === 0 || answer.status === 204 || answer.status === 304;
    return new Response(empty ? null : answer.body, { status: answer.status, headers: answer.headers });
  };
}

async function bodyOf(c: Context, limit: number): Promise<Uint8Array> {
  const { raw } = c.req;
  // Read already (a validator in front): Hono hands out its cached copy.
  if (Object.keys(c.req.bodyCache).length > 0 || raw.body === null) return new Uint8Array(await c.req.arrayBuffer());
  const bytes = await readBody(raw.body, raw.headers.get('content-length'), limit);
  // A request holding the bytes read, as Hono's own body-limit middleware leaves it: `c.req.json()` reads it.
  c.req.raw = new Request(raw, { body: bytes });
  return bytes;
}
