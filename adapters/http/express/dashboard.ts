/** `txbarrier/dashboard/express`: the dashboard as Express middleware, mounted with `app.use('/ops', expressDashboard(dashboard))`. */
import type { NextFunction, Request, Response } from 'express';
import type { Dashboard } from '../../../src/dashboard/dashboard.js';
import { sendResponse, webRequest } from '../node-web.js';

/** Middleware serving `dashboard` under the path it is mounted at; `authorize` receives Express's `req`. Errors go to `next`. */
export function expressDashboard(dashboard: Dashboard<Request>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    dashboard.handle(webRequest(req, req.originalUrl), req.baseUrl, req).then((response) => sendResponse(res, response), next);
  };
}
