/** The draft's cases through the Fastify, Hono and Koa fronts, on every engine. */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import Fastify, { type FastifyRequest } from 'fastify';
import { type Context, Hono } from 'hono';
import Koa from 'koa';
import { idempotentRoute as fastifyRoute } from '../../adapters/http/fastify/idempotency.js';
import { idempotentRoute as honoRoute } from '../../adapters/http/hono/idempotency.js';
import { idempotentRoute as koaRoute } from '../../adapters/http/koa/idempotency.js';
import { clientOf, draftCases, type StartApp } from './cases.js';
import { listen } from '../fronts/express-http.js';

const startFastify: StartApp = async (h, specs) => {
  const app = Fastify();
  for (const spec of specs) {
    const { global, ...options } = spec.options;
    const scope = global ? ('global' as const) : (request: FastifyRequest) => clientOf(request.headers['x-client']);
    app.post(spec.path, fastifyRoute(h.store, (tx, request: FastifyRequest) => spec.handler(tx, request.body), { ...options, scope }));
  }
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
};

const startHono: StartApp = async (h, specs) => {
  const app = new Hono();
  // Hono's default onError prints the handler's error; the status is what the cases check.
  app.onError((_error, c) => c.text('internal error', 500));
  for (const spec of specs) {
    const { global, ...options } = spec.options;
    const scope = global ? ('global' as const) : (c: { req: { header(name: string): string | undefined } }) => clientOf(c.req.header('x-client'));
    app.post(spec.path, honoRoute(h.store, async (tx, c: Context) => spec.handler(tx, await c.req.json()), { ...options, scope }));
  }
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((done) => server.close(() => done())) };
};

const startKoa: StartApp = async (h, specs) => {
  const app = new Koa();
  app.silent = true;
  const routes = new Map(
    specs.map((spec) => {
      const { global, ...options } = spec.options;
      const scope = global ? ('global' as const) : (ctx: Koa.Context) => clientOf(ctx.get('x-client'));
      const route = koaRoute(h.store, (tx, ctx) => spec.handler(tx, JSON.parse(String(ctx.request.rawBody))), { ...options, scope });
      return [spec.path, route] as const;
    }),
  );
  app.use(async (ctx, next) => {
    const route = ctx.method === 'POST' ? routes.get(ctx.path) : undefined;
    return route ? route(ctx) : next();
  });
  return listen(app.callback());
};

draftCases('fastify', startFastify);
draftCases('hono', startHono, { readsBody: true });
draftCases('koa', startKoa, { readsBody: true });
