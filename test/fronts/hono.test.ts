import { createAdaptorServer } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { validator } from 'hono/validator';
import { type BarrierEnv, barrierMiddleware, barrierRoute, queryPreparedRoute } from '../../adapters/http/hono/barrier.js';
import { describeFront, listenOn } from './conformance.js';

describeFront('hono', async ({ store, branches, middlewareNote }) => {
  const app = new Hono<BarrierEnv>();
  // Hono reads bodies lazily; its validator answers a malformed one with 400 before the handler.
  const json = [bodyLimit({ maxSize: 1024 }), validator('json', (body) => body)] as const;
  app.use('/mw/*', barrierMiddleware());
  // The barrier is a typed context variable, no cast.
  app.get('/mw/whoami', (c) => c.json({ gid: c.get('barrier').gid, op: c.var.barrier.op }));
  app.post('/mw/note', ...json, barrierRoute(store, async (tx, c) => middlewareNote(tx, c.get('barrier'), await c.req.json())));
  for (const [path, { run, onError }] of Object.entries(branches)) {
    const body = (c: Context) => (c.req.header('content-type') ? c.req.json() : undefined);
    app.post(path, ...json, barrierRoute(store, async (tx, c) => run(tx, c.get('barrier'), await body(c)), onError ? { onError } : {}));
  }
  app.get('/query-prepared', queryPreparedRoute(store));
  app.get('/mw/query-prepared', queryPreparedRoute(store));
  return listenOn(createAdaptorServer({ fetch: app.fetch }) as import('node:http').Server);
});
