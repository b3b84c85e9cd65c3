/**
 * `idempotentRoute` for Express 4 and 5. The fingerprint hashes the body bytes as received when
 * `keepRawBody` is the body parser's `verify` hook (`express.json({ verify: keepRawBody })`), or
 * when `express.raw()`/`express.text()` left them in `req.body`; with any other parser it hashes
 * the canonical JSON of the parsed body (keys sorted), so a client that reorders keys is still
 * the same request. The body is read and bounded by that parser (its `limit`: 100 kB by default for
 * `express.json()`), before the route sees the request.
 */
import type { Request } from 'express';
import {
  bodyForFingerprint,
  idempotencyGuard,
  type IdempotencyOptions,
  type IdempotentResponse,
} from '../../../src/idempotency/guard.js';
import type { BarrierStore } from '../../../src/transaction/store.js';

// A global augmentation, as adapters/http/express/barrier.ts does: no import of Express's types is needed, and
// with them it merges into the `Express.Request` every Express 4 and 5 request extends.
declare global {
  namespace Express {
    interface Request {
      /** The body's bytes as received; set by `keepRawBody`. */
      rawBody?: Buffer;
    }
  }
}

/** The part of an Express request the route reads (Express 4 and 5 both fit); handlers get Express's own `Request`. */
export interface IdempotentExpressRequest extends Express.Request {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  url?: string;
  originalUrl?: string;
  // `any` as in Express's own types: whatever the body parser produced.
  body?: any;
}

/** The part of a Node `ServerResponse` the route writes. */
export interface IdempotentExpressResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: Uint8Array): unknown;
}

/** The body parser's `verify` hook that keeps the bytes the fingerprint hashes: `express.json({ verify: keepRawBody })`. */
export function keepRawBody(req: object, _res: unknown, buffer: Buffer): void {
  (req as { rawBody?: Buffer }).rawBody = buffer;
}

/**
 * An Express handler that runs `handler` at most once per `Idempotency-Key` and scope, inside the
 * store's transaction, and commits its response with its work. Repeats get the stored response
 * (marked `Idempotent-Replayed: true`); refusals are RFC 9457 problems (400, 409, 422), a busy
 * database 503. What the handler or the database throws goes to `next(error)` (an `Error` always:
 * a rejection with anything else becomes `IdempotencyResponseError`), and nothing is stored.
 */
export function idempotentRoute<Tx, Req extends IdempotentExpressRequest = Request>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, req: Req) => Promise<IdempotentResponse> | IdempotentResponse,
  options: IdempotencyOptions<Req>,
) {
  const guard = idempotencyGuard<Tx, Req>(store, options);
  return async (req: Req, res: IdempotentExpressResponse, next: (error?: unknown) => void): Promise<void> => {
    try {
      const request = {
        method: req.method,
        target: req.originalUrl ?? req.url ?? '/',
        key: req.headers['idempotency-key'],
        body: bodyForFingerprint(req.rawBody, req.body),
      };
      const answer = await guard.respond(request, req, (tx) => handler(tx, req));
      res.statusCode = answer.status;
      for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
      res.end(answer.body);
    } catch (error) {
      next(error);
    }
  };
}
