/**
 * `txbarrier/dashboard/fastify`: the dashboard as a Fastify plugin, mounted with
 * `app.register(fastifyDashboard(dashboard), { prefix: '/ops' })`.
 */
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import type { Dashboard } from '../../../src/dashboard/dashboard.js';
import { webRequest } from '../node-web.js';

/** A plugin serving `dashboard` under its prefix; `authorize` receives Fastify's `request`. Errors go to Fastify's error handler. */
export function fastifyDashboard(dashboard: Dashboard<FastifyRequest>): FastifyPluginCallback {
  return (fastify, _options, done) => {
    const base = fastify.prefix;
    // '/' under a prefix is both `/ops` and `/ops/`; '/*' is everything below.
    for (const url of ['/', '/*']) {
      fastify.route({
        method: ['GET', 'POST'],
        url,
        handler: async (request, reply) => {
          const response = await dashboard.handle(webRequest(request.raw, request.url), base, request);
          reply.code(response.status);
          response.headers.forEach((value, name) => void reply.header(name, value));
          return reply.send(Buffer.from(await response.arrayBuffer()));
        },
      });
    }
    done();
  };
}
