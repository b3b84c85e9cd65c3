/**
 * The dashboard speaks Web `Request`/`Response`; Express, Koa, Fastify and the CLI's server hold
 * node:http's objects. These two functions are the whole translation. No body is carried: the
 * dashboard's actions take their arguments from the query string.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A bodiless Web `Request` for `req`, at `target` (path and query, as the framework reports the full one). */
export function webRequest(req: IncomingMessage, target: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return new Request(new URL(target, `http://${req.headers.host ?? 'localhost'}`), { method: req.method ?? 'GET', headers });
}

/** Writes `response` to `res`: status, headers, body. */
export async function sendResponse(res: ServerResponse, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(body);
}
