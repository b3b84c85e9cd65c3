import { createServer } from 'node:http';
import Koa, { type Context, type Middleware } from 'koa';
import { barrierMiddleware, barrierRoute, queryPreparedRoute } from '../../adapters/http/koa/barrier.js';
import { describeFront, listenOn } from './conformance.js';

/** Koa has no body parser of its own; this stands for the one an app puts in front: JSON only, 1 kB, 400/413. */
const jsonBody: Middleware = async (ctx, next) => {
  if (ctx.is('application/json')) {
    let text = '';
    for await (const chunk of ctx.req) {
      text += chunk;
      if (text.length > 1024) ctx.throw(413, 'request entity too large');
    }
    try {
      (ctx.request as { body?: unknown }).body = text === '' ? undefined : JSON.parse(text);
    } catch {
      ctx.throw(400, 'malformed JSON');
    }
  }
  await next();
};

const bodyOf = (ctx: Context): any => (ctx.request as { body?: unknown }).body;

describeFront('koa', async ({ store, branches, middlewareNote }) => {
  const app = new Koa();
  const reported: unknown[] = [];
  // Koa's own reporting: its `error` event (printed to stderr when nobody listens).
  app.on('error', (error) => reported.push(error));
  const routes = new Map<string, Middleware>([
    ['GET /mw/whoami', (ctx) => void (ctx.body = { gid: ctx.state.barrier?.gid, op: ctx.state.barrier?.op })],
    ['POST /mw/note', barrierRoute(store, (tx, ctx) => middlewareNote(tx, ctx.state.barrier, bodyOf(ctx)))],
    ['GET /query-prepared', queryPreparedRoute(store)],
    ['GET /mw/query-prepared', queryPreparedRoute(store)],
  ]);
  for (const [path, { run, onError }] of Object.entries(branches)) {
    routes.set(`POST ${path}`, barrierRoute(store, (tx, ctx) => run(tx, ctx.state.barrier, bodyOf(ctx)), onError ? { onError } : {}));
  }
  const mw = barrierMiddleware();
  app.use(jsonBody);
  app.use((ctx, next) => (ctx.path.startsWith('/mw/') ? mw(ctx, next) : next()));
  app.use((ctx, next) => {
    const route = routes.get(`${ctx.method} ${ctx.path}`);
    return route ? route(ctx, next) : ctx.throw(404);
  });
  return { ...(await listenOn(createServer(app.callback()))), reported };
});
