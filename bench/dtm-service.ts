/**
 * One branch service of the DTM benchmark (bench/dtm.ts), in a process of its own. DTM calls
 * `POST /transfer/<branch>/<op>?gid=…` with a JSON body `{ "statements": n }`; the branch runs n
 * UPDATEs of distinct random accounts (in ascending order: no deadlocks) in one local transaction.
 * `barrier` serves it through Express's `barrierRoute` on the engine's store (chaos/fronts.ts, as a
 * user writes it); `bare` through the same Express route with no barrier (BEGIN, the UPDATEs,
 * COMMIT). Each process has an accounts table (bench/engines.ts) and a barrier table of its own,
 * dropped on SIGTERM. Answers the parent's IPC message with `{ answered, failed, barrierRows }`:
 * requests answered 200 and otherwise, and the rows in its barrier table (`barrier` only).
 * Prints `listening <port>`.
 *
 *   node --import tsx bench/dtm-service.ts '<ServiceArgs as JSON>'
 */
import type { Server } from 'node:http';
import type { EngineName } from './engine.js';
import { randomTransfers } from './engine.js';
import { openEngine } from './engines.js';

export interface ServiceArgs {
  engine: EngineName;
  variant: 'barrier' | 'bare';
  /** Prefix of this process's accounts and barrier tables. */
  prefix: string;
}

const args = JSON.parse(process.argv[2]!) as ServiceArgs;
const engine = await openEngine(args.engine, { prefix: args.prefix });
const statementsOf = (body: unknown) => (body as { statements: number }).statements;
const barrierTable = `${args.prefix}barrier`;

async function barrierServer(): Promise<Server> {
  const { branchServer } = await import('../chaos/fronts.js');
  const store = engine.store(barrierTable);
  await store.ensureSchema();
  return branchServer('express', store, (tx, { body }) => engine.business(tx, randomTransfers(statementsOf(body), 1)));
}

async function bareServer(): Promise<Server> {
  const [{ default: express }, { createServer }] = await Promise.all([import('express'), import('node:http')]);
  const app = express();
  app.use(express.json());
  app.post('/transfer/:branch/:op', async (req, res) => {
    try {
      await engine.bare(randomTransfers(statementsOf(req.body), 1));
      res.json({ dtm_result: 'SUCCESS' });
    } catch (error) {
      process.stderr.write(`bare branch failed: ${String(error)}\n`);
      res.status(500).json({ error: 'internal error' });
    }
  });
  return createServer(app);
}

const server = await (args.variant === 'barrier' ? barrierServer() : bareServer());
const counts = { answered: 0, failed: 0 };
server.on('request', (_request, response) => response.once('finish', () => (response.statusCode === 200 ? counts.answered++ : counts.failed++)));
process.on('message', () => {
  const rows = args.variant === 'barrier' ? engine.rowCount(barrierTable) : Promise.resolve(undefined);
  void rows.then((barrierRows) => process.send!({ ...counts, barrierRows }));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : address}\n`);
});
process.once('SIGTERM', () => {
  server.close(() => void engine.dropTable(barrierTable).then(() => engine.close()).finally(() => process.exit(0)));
  server.closeIdleConnections();
  // DTM keeps its connections alive: a socket it has not closed would hold the exit.
  setTimeout(() => server.closeAllConnections(), 2000).unref();
});
