/**
 * `txbarrier/dashboard/hono`: the dashboard as a Hono handler for a path and what is under it:
 * `const ops = honoDashboard(dashboard, { path: '/ops' }); app.all('/ops', ops); app.all('/ops/*', ops)`.
 */
import type { Context } from 'hono';
import type { Dashboard } from '../../../src/dashboard/dashboard.js';

export interface HonoDashboardOptions {
  /** The path the handler is registered at (with `/*` below it), e.g. `/ops`. Required. */
  path: string;
}

/** A handler serving `dashboard` under `path`; `authorize` receives Hono's `c`. */
export function honoDashboard(dashboard: Dashboard<Context>, { path }: HonoDashboardOptions) {
  return (c: Context): Promise<Response> => dashboard.handle(c.req.raw, path, c);
}
