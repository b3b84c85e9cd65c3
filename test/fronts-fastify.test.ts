import Fastify, { type FastifyRequest } from 'fastify';
import { barrierPlugin, barrierRoute, queryPreparedRoute } from '../adapters/fastify.js';
import { describeFront, listenOn } from './fronts.js';

describeFront('fastify', async ({ store, branches, middlewareNote }) => {
  const app = Fastify({ bodyLimit: 1024 });
  await app.register(
    async (scope) => {
      await scope.register(barrierPlugin);
      // Declaration merging types request.barrier on Fastify's own request, no cast.
      scope.get('/whoami', async (request: FastifyRequest) => ({ gid: request.barrier?.gid, op: request.barrier?.op }));
      scope.post<{ Body: { text: string } }>(
        '/note',
        { schema: { body: { type: 'object', properties: { text: { type: 'string' } } } } },
        barrierRoute(store, (tx, request) => middlewareNote(tx, request.barrier, request.body)),
      );
    },
    { prefix: '/mw' },
  );
  for (const [path, { run, onError }] of Object.entries(branches)) {
    app.post(path, barrierRoute(store, (tx, request) => run(tx, request.barrier, request.body), onError ? { onError } : {}));
  }
  app.get('/query-prepared', queryPreparedRoute(store));
  await app.ready();
  return listenOn(app.server);
});
