/**
 * The transfer's branch route in each HTTP front, as a user of that framework would write it: one
 * `barrierRoute` answering every POST under `/transfer/`, a JSON body parser in front, and the
 * 2-phase message check-back on `GET /query-prepared`. Each
 * framework is loaded only when its front is asked for. The chaos service serves it; a benchmark
 * can too.
 */
import { createServer, type Server } from 'node:http';
import type { Barrier, BarrierStore } from '../src/index.js';

/** A Node header as one string: Node joins repeats of most headers already, `set-cookie` aside. */
const headerText = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(', ') : value);

export const FRONTS = ['express', 'fastify', 'hono', 'koa'] as const;
export type FrontName = (typeof FRONTS)[number];

/** What one delivery hands the business work: its barrier, the parsed JSON body, and a request header. */
export interface BranchRequest {
  barrier: Barrier;
  body: unknown;
  header(name: string): string | undefined;
}

export type BranchWork<Tx> = (tx: Tx, request: BranchRequest) => unknown;

/** A Node server (not yet listening) for `front`, running `work` under the barrier of each POST to `/transfer/…`, and the check-back. */
export async function branchServer<Tx>(front: FrontName, store: BarrierStore<Tx>, work: BranchWork<Tx>): Promise<Server> {
  switch (front) {
    case 'express': {
      const { default: express } = await import('express');
      const { barrierRoute, queryPreparedRoute } = await import('../adapters/http/express/barrier.js');
      const app = express();
      app.use(express.json());
      // DTM names one URL per op; the op also travels in the query, which is what the barrier reads.
      app.post('/transfer/:branch/:op', barrierRoute(store, (tx, req) => work(tx, { barrier: req.barrier, body: req.body, header: (name) => headerText(req.headers[name]) })));
      app.get('/query-prepared', queryPreparedRoute(store));
      return createServer(app);
    }
    case 'fastify': {
      const { default: Fastify } = await import('fastify');
      const { barrierRoute, queryPreparedRoute } = await import('../adapters/http/fastify/barrier.js');
      const app = Fastify();
      app.post('/transfer/*', barrierRoute(store, (tx, request) => work(tx, { barrier: request.barrier, body: request.body, header: (name) => headerText(request.headers[name]) })));
      app.get('/query-prepared', queryPreparedRoute(store));
      await app.ready();
      return app.server;
    }
    case 'hono': {
      const [{ Hono }, { createAdaptorServer }, { barrierRoute, queryPreparedRoute }] = await Promise.all([
        import('hono'),
        import('@hono/node-server'),
        import('../adapters/http/hono/barrier.js'),
      ]);
      const app = new Hono();
      app.post('/transfer/*', barrierRoute(store, async (tx, c) => work(tx, { barrier: c.get('barrier'), body: await c.req.json(), header: (name) => c.req.header(name) })));
      app.get('/query-prepared', queryPreparedRoute(store));
      return createAdaptorServer({ fetch: app.fetch }) as Server;
    }
    case 'koa': {
      const { default: Koa } = await import('koa');
      const { barrierRoute, queryPreparedRoute } = await import('../adapters/http/koa/barrier.js');
      const app = new Koa();
      const route = barrierRoute(store, (tx, ctx) => work(tx, { barrier: ctx.state.barrier, body: (ctx.request as { body?: unknown }).body, header: (name) => ctx.get(name) || undefined }));
      const checkBack = queryPreparedRoute(store);
      app.use(async (ctx, next) => {
        if (ctx.method === 'GET' && ctx.path === '/query-prepared') return checkBack(ctx, next);
        if (ctx.method !== 'POST' || !ctx.path.startsWith('/transfer/')) return ctx.throw(404);
        // Koa has no body parser of its own; an app has one in front, this stands for it.
        let text = '';
        for await (const chunk of ctx.req) text += chunk;
        (ctx.request as { body?: unknown }).body = text === '' ? undefined : JSON.parse(text);
        return route(ctx, next);
      });
      return createServer(app.callback());
    }
  }
}
