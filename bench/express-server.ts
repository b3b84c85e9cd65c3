/**
 * The Express app the route benchmark loads, in a process of its own so the load generator does
 * not share its event loop. Two routes on one store and table: `/sdk` is `barrierRoute`, `/hand`
 * the same branch written by hand (same SQL, same JSON answers). Prints `listening <port>`, and
 * drops its table and exits on SIGTERM.
 *
 *   tsx bench/express-server.ts <sqlite|mysql|postgres> <table prefix>
 */
import express from 'express';
import { barrierRoute } from '../adapters/express.js';
import { type EngineName, ENGINES, openEngine, type Transfer } from './engine.js';

const [engineName, prefix] = process.argv.slice(2) as [EngineName, string];
if (!ENGINES.includes(engineName) || !prefix) throw new Error(`usage: express-server.ts <${ENGINES.join('|')}> <table prefix>`);
const engine = await openEngine(engineName, { prefix });
const TABLE = `${prefix}express`;
await engine.createBarrierTable(TABLE, 'default');
const store = engine.store(TABLE);

/** The business payload: `{ "account": n, "amount": m }`. */
const transfersOf = (body: { account: number; amount: number }): Transfer[] => [{ account: body.account, amount: body.amount }];

const app = express();
app.use(express.json());

app.post(
  '/sdk',
  barrierRoute(store, async (tx, req) => {
    await engine.business(tx, transfersOf(req.body));
    return { account: req.body.account };
  }),
);

app.post('/hand', async (req, res) => {
  // The benchmark sends saga actions of branch 01, which is all this hand-written route handles.
  const { gid, trans_type, branch_id, op } = req.query;
  if (typeof gid !== 'string' || trans_type !== 'saga' || branch_id !== '01' || op !== 'action') {
    res.status(400).json({ error: 'invalid barrier request' });
    return;
  }
  try {
    const inserted = await engine.handBarrier(TABLE, op, gid, transfersOf(req.body));
    const answer = inserted === 1 ? { outcome: 'applied', value: { account: req.body.account } } : { outcome: 'duplicate' };
    res.status(200).json({ dtm_result: 'SUCCESS', ...answer });
  } catch (error) {
    if (store.dialect.isRetryable(error)) res.status(425).json({ dtm_result: 'ONGOING' });
    else res.status(500).json({ error: 'internal error' });
  }
});

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : address}\n`);
});

process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void engine
    .dropTable(TABLE)
    .then(() => engine.close())
    .finally(() => process.exit(0));
});
