import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { barrierPlugin, barrierRoute, queryPreparedRoute } from '../../adapters/http/fastify/barrier.js';
import { dtmQuery, request } from './express-http.js';
import { describeFront, listenOn } from './conformance.js';
import { sqliteHarness } from '../stores/sqlite-harness.js';

describeFront('fastify', async ({ store, branches, middlewareNote }) => {
  const app = Fastify({ bodyLimit: 1024 });
  await app.register(
    async (scope) => {
      await scope.register(barrierPlugin);
      // Declaration merging types request.barrier on Fastify's own request, no cast.
      scope.get('/query-prepared', queryPreparedRoute(store));
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

describe('fastify specifics', () => {
  it("a body its schema refuses gets Fastify's 400 before any barrier work; a 500 goes to Fastify's logger when it is on", async () => {
    const h = await sqliteHarness();
    const logged: unknown[] = [];
    const stream = { write: (line: string) => void logged.push(JSON.parse(line)) };
    const app = Fastify({ logger: { level: 'error', stream } });
    app.post<{ Body: { amount: number } }>(
      '/pay',
      { schema: { body: { type: 'object', required: ['amount'], properties: { amount: { type: 'integer' } } } } },
      barrierRoute(h.store, async (tx, request) => {
        await h.record(tx, request.barrier.gid, String(request.body.amount));
        if (request.body.amount < 0) throw new Error('SELECT secret_column');
      }),
    );
    await app.ready();
    const server = await listenOn(app.server);
    try {
      const gid = `fastify-${randomUUID()}`;
      const post = (body: unknown) =>
        request(`${server.url}/pay?${dtmQuery(gid, 'action')}`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const refused = await post({ amount: 'ten' });
      expect([refused.status, refused.json?.code]).toEqual([400, 'FST_ERR_VALIDATION']);
      expect(await h.barrierRows(gid)).toEqual([]);
      const broken = await post({ amount: -1 });
      expect([broken.status, broken.json]).toEqual([500, { error: 'internal error' }]);
      expect(logged).toEqual([expect.objectContaining({ level: 50, msg: 'txbarrier: answered 500', err: expect.objectContaining({ message: 'SELECT secret_column' }) })]);
      expect((await post({ amount: 10 })).json).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied' });
      expect(await h.notes(gid)).toEqual(['10']);
    } finally {
      await server.close();
      await h.close();
    }
  });
});
