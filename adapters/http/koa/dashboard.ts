/** `txbarrier/dashboard/koa`: the dashboard as Koa middleware under a path: `app.use(koaDashboard(dashboard, { path: '/ops' }))`. */
import type { Next, ParameterizedContext } from 'koa';
import type { Dashboard } from '../../../src/dashboard/dashboard.js';
import { webRequest } from '../node-web.js';

export interface KoaDashboardOptions {
  /** Where the dashboard answers (Koa has no mounting of its own), e.g. `/ops`. Required. */
  path: string;
}

/** Middleware serving `dashboard` under `path` and passing every other request on; `authorize` receives Koa's `ctx`. */
export function koaDashboard(dashboard: Dashboard<ParameterizedContext>, { path }: KoaDashboardOptions) {
  const base = path.replace(/\/+$/, '');
  return async (ctx: ParameterizedContext, next: Next): Promise<void> => {
    if (ctx.path !== base && !ctx.path.startsWith(`${base}/`)) return next();
    const response = await dashboard.handle(webRequest(ctx.req, ctx.originalUrl), base, ctx);
    ctx.status = response.status;
    response.headers.forEach((value, name) => ctx.set(name, value));
    ctx.body = Buffer.from(await response.arrayBuffer());
  };
}
