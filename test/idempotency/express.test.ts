import { describe, expect, it } from 'vitest';
import { idempotentRoute, keepRawBody } from '../../adapters/http/express/idempotency.js';
import { clientOf, draftCases, routeSpecs, runs, type StartApp } from './cases.js';
import { EXPRESS_VERSIONS, listen } from '../fronts/express-http.js';
import { ENGINES, newKey, openEngine, post } from './harness.js';

const client = (req: { headers: Record<string, unknown> }) => clientOf(req.headers['x-client']);

const startOn = (express: (typeof EXPRESS_VERSIONS)[number][1]): StartApp => async (h, specs) => {
  const app = express();
  app.use(express.json({ verify: keepRawBody }));
  for (const spec of specs) {
    const { global, ...options } = spec.options;
    app.post(spec.path, idempotentRoute(h.store, (tx, req) => spec.handler(tx, req.body), { ...options, scope: global ? 'global' : client }));
  }
  return listen(app);
};

for (const [version, express] of EXPRESS_VERSIONS) draftCases(version, startOn(express));
const start = startOn(EXPRESS_VERSIONS[0][1]);

describe.each(ENGINES)('express: one key, many requests at once, on %s', (engine) => {
  it('runs the work once for 100 concurrent requests; every other answer is 409 or the replay', async () => {
    const h = await openEngine(engine, { connections: 8 });
    const app = await start(h, routeSpecs(h));
    try {
      const { key, header } = newKey();
      const note = `crowd-${key}`;
      const answers = await Promise.all(
        Array.from({ length: 100 }, () => post(`${app.url}/slow`, { note, amount: 3 }, { 'idempotency-key': header })),
      );
      const executed = answers.filter((a) => a.status === 201 && a.headers.get('idempotent-replayed') === null);
      const replayed = answers.filter((a) => a.status === 201 && a.headers.get('idempotent-replayed') === 'true');
      const conflicts = answers.filter((a) => a.status === 409);
      expect(executed).toHaveLength(1);
      expect(replayed.length + conflicts.length).toBe(99);
      // The work took 50 ms, so some requests came while it ran: the in-flight path was taken.
      expect(conflicts.length).toBeGreaterThan(0);
      for (const replay of replayed) expect(replay.text).toBe(executed[0]!.text);
      expect([runs.get(note), await h.ledger(note), await h.keyRows(key)]).toEqual([1, 1, 1]);
    } finally {
      await app.close();
      await h.close();
    }
  });
});
