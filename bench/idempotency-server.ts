/**
 * One Express app in a process of its own, for the idempotency benchmark: `sdk` is `idempotentRoute`,
 * `hand` the same route writing the same key row by hand on the raw driver (bench/idempotency-hand.ts;
 * txbarrier never loaded). Both read `Idempotency-Key` (an sf-string) and the `x-client` scope, hash
 * the method, target and body bytes, run one account UPDATE from the JSON body and store and answer
 * 201 `{"account":n}`. Prints `listening <port>`; answers `mark`/`cpu` over IPC as
 * bench/front-server.ts does; exits on SIGTERM.
 *
 *   node idempotency.mjs '<IdempotencyServerArgs as JSON>'
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import express, { type Request } from 'express';
import { handKeyed } from './idempotency-hand.js';
import { sdkStore } from './sdk-store.js';
import { connect, type ConnectArgs, serveBenchmark } from './worker-common.js';

export interface IdempotencyServerArgs extends ConnectArgs {
  route: 'sdk' | 'hand';
  /** The key table (already created by the parent). */
  table: string;
}

interface Transfer {
  account: number;
  amount: number;
}

const LIFETIME_MS = 24 * 3600_000;
const args = JSON.parse(process.argv[2]!) as IdempotencyServerArgs;
const driver = await connect(args);
const rawBody = (req: object, _res: unknown, buffer: Buffer) => void ((req as { rawBody?: Buffer }).rawBody = buffer);
const app = express();
app.use(express.json({ verify: rawBody }));

if (args.route === 'sdk') {
  const { idempotentRoute } = await import('../adapters/http/express/idempotency.js');
  // The barrier table is never written: an idempotent route uses only the key table.
  const store = await sdkStore(driver, `${args.table}_barrier`);
  app.post(
    '/transfer',
    idempotentRoute(
      store,
      async (tx, req) => {
        const { account, amount } = req.body as Transfer;
        await driver.update(tx, account, amount);
        return { status: 201, body: { account } };
      },
      { scope: (req) => String(req.headers['x-client']), table: args.table },
    ),
  );
} else {
  const keyed = handKeyed(driver, args.table);
  const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
  app.post('/transfer', async (req: Request & { rawBody?: Buffer }, res, next) => {
    try {
      const header = req.headers['idempotency-key'];
      const scope = req.headers['x-client'];
      if (typeof header !== 'string' || !/^"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,255}"$/.test(header) || typeof scope !== 'string') {
        return void res.status(400).end();
      }
      const { account, amount } = req.body as Transfer;
      const body = Buffer.from(JSON.stringify({ account }));
      const headers = { 'content-type': 'application/json; charset=utf-8' };
      const outcome = await keyed(
        {
          scope,
          key: header.slice(1, -1),
          fingerprint: sha256(`POST ${req.originalUrl}\n${sha256(req.rawBody ?? '')}`),
          lifetimeMs: LIFETIME_MS,
          status: 201,
          headers: JSON.stringify(headers),
          body,
        },
        (tx) => driver.update(tx, account, amount),
      );
      if (outcome === 'taken') return void res.status(409).end();
      res.status(201).set(headers).end(body);
    } catch (error) {
      next(error);
    }
  });
}


const server = createServer(app);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : address}\n`);
});
serveBenchmark(server, driver);
