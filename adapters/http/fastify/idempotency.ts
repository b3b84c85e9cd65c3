/**
 * `idempotentRoute` for Fastify. The route's own `preParsing` hook keeps the body bytes as
 * received (within the route's `bodyLimit`) before Fastify's parser reads them, so the
 * fingerprint hashes exactly what the client sent, whatever the content type.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { idempotencyGuard, type IdempotencyOptions, type IdempotentResponse } from '../../../src/idempotency/guard.js';
import type { BarrierStore } from '../../../src/transaction/store.js';

/** Where the route keeps the body's bytes: not declared on `FastifyRequest`, where a raw-body plugin may declare a `rawBody` of another type. */
interface WithRawBody {
  rawBody?: Buffer;
}

const DEFAULT_BODY_LIMIT = 1_048_576;

/**
 * Fastify route options (`app.post(path, idempotentRoute(...))`) whose handler runs `handler` at
 * most once per `Idempotency-Key` and scope, inside the store's transaction, and commits its
 * response with its work. Repeats get the stored response (marked `Idempotent-Replayed: true`);
 * refusals are RFC 9457 problems (400, 409, 422), a busy database 503. A body over the route's
 * `bodyLimit` gets Fastify's own 413. What the handler or the database throws goes to Fastify's
 * error handler, and nothing is stored.
 */
export function idempotentRoute<Tx, Req extends FastifyRequest = FastifyRequest, Reply extends FastifyReply = FastifyReply>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, request: Req, reply: Reply) => Promise<IdempotentResponse> | IdempotentResponse,
  options: IdempotencyOptions<Req>,
) {
  const guard = idempotencyGuard<Tx, Req>(store, options);
  return {
    preParsing: async (request: Req, _reply: Reply, payload: AsyncIterable<Buffer | string>) => {
      const limit = request.routeOptions?.bodyLimit ?? DEFAULT_BODY_LIMIT;
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of payload) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += bytes.byteLength;
        if (size > limit) throw Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
        chunks.push(bytes);
      }
      const body = Buffer.concat(chunks);
      (request as WithRawBody).rawBody = body;
      return Readable.from([body]);
    },
    handler: async (request: Req, reply: Reply): Promise<Reply> => {
      const parts = { method: request.method, target: request.url, key: request.headers['idempotency-key'], body: (request as WithRawBody).rawBody };
      const answer = await guard.respond(parts, request, (tx) => handler(tx, request, reply));
      reply.code(answer.status);
      for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
      reply.send(answer.body.byteLength === 0 ? undefined : Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength));
      return reply;
    },
  };
}
