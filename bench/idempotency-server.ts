/**
 * The app the idempotency benchmark loads, in a process of its own. Two routes on one store, the
 * same business transaction (one account UPDATE) and the same 201 answer: `/plain` is a bare
 * `store.transaction`, `/idempotent` is `idempotentRoute`. Prints `listening <port>`; on SIGTERM
 * drops its tables and exits.
 *
 *   tsx bench/idempotency-server.ts <sqlite|mysql|postgres> <table prefix>
 */
import express from 'express';
import { idempotentRoute, keepRawBody } from '../adapters/http/express/idempotency.js';
import { ensureIdempotencySchema } from '../src/idempotency/guard.js';
import { type EngineName, ENGINES } from './engine.js';
import { openEngine } from './engines.js';

const [engineName, prefix] = process.argv.slice(2) as [EngineName, string];
if (!ENGINES.includes(engineName) || !prefix) throw new Error(`usage: idempotency-server.ts <${ENGINES.join('|')}> <table prefix>`);
const engine = await openEngine(engineName, { prefix });
const KEYS = `${prefix}idempotency`;
const store = engine.store(`${prefix}unused_barrier`);
await ensureIdempotencySchema(store, { table: KEYS });

const app = express();
app.use(express.json({ verify: keepRawBody }));
app.post('/plain', async (req, res, next) => {
  try {
    const { account, amount } = req.body;
    await store.transaction((connection) => engine.business(connection.tx, [{ account, amount }]));
    res.status(201).json({ account });
  } catch (error) {
    next(error);
  }
});
app.post(
  '/idempotent',
  idempotentRoute(
    store,
    async (tx, req) => {
      const { account, amount } = req.body;
      await engine.business(tx, [{ account, amount }]);
      return { status: 201, body: { account } };
    },
    { scope: (req) => String(req.headers['x-client']), table: KEYS },
  ),
);

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : address}\n`);
});

process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void engine
    .dropTable(KEYS)
    .then(() => engine.close())
    .finally(() => process.exit(0));
});
