/**
 * One HTTP front in a process of its own, for the fronts benchmark: `sdk` is the front's
 * `barrierRoute` (chaos/fronts.ts, as a user of that framework writes it), `hand` the same branch
 * hand-written in the same framework on the raw driver (bench/hand-barrier.ts: the same statements),
 * answering the same JSON; the `hand` process never loads txbarrier. Both read the barrier from the
 * query and `{ "account": n, "amount": m }` from a JSON body, and answer 200
 * `{"dtm_result":"SUCCESS","outcome":"applied","value":{"account":n}}`. Prints `listening <port>`;
 * exits on SIGTERM. Over IPC (when spawned with one) `mark` starts a CPU reading and `cpu` answers
 * the per-thread CPU since (`ThreadCpu`, µs): the server's own cost per request, whatever the client costs.
 *
 *   node front.mjs '<FrontArgs as JSON>'
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FrontName } from '../chaos/fronts.js';
import { handOp } from './hand-barrier.js';
import { sdkStore } from './sdk-store.js';
import { connect, serveBenchmark, type WorkerArgs } from './worker-common.js';

export interface FrontArgs extends Pick<WorkerArgs, 'engine' | 'table' | 'accounts' | 'target'> {
  front: FrontName;
  /** `core`: the hand-written route, its barrier op through `Barrier.call` instead (txbarrier loaded; no front adapter, no protocol module). */
  route: 'sdk' | 'hand' | 'core';
}

interface Transfer {
  account: number;
  amount: number;
}

const args = JSON.parse(process.argv[2]!) as FrontArgs;
const driver = await connect(args);

async function sdkServer(): Promise<Server> {
  const [{ branchServer }, store] = await Promise.all([import('../chaos/fronts.js'), sdkStore(driver, args.table)]);
  return branchServer(args.front, store, async (tx, request) => {
    const { account, amount } = request.body as Transfer;
    await driver.update(tx, account, amount);
    return { account };
  });
}

/** The hand-written branch: 400 unless it is a saga action of branch 01 (all the benchmark sends), 425 on a conflict. */
async function handBranch(query: URLSearchParams, body: Transfer): Promise<{ status: number; body: string }> {
  const gid = query.get('gid');
  if (!gid || query.get('trans_type') !== 'saga' || query.get('branch_id') !== '01' || query.get('op') !== 'action') {
    return { status: 400, body: '{"error":"invalid barrier request"}' };
  }
  const conflict = await applyAction(gid, body.account, body.amount);
  if (conflict) return { status: 425, body: '{"dtm_result":"ONGOING"}' };
  return { status: 200, body: JSON.stringify({ dtm_result: 'SUCCESS', outcome: 'applied', value: { account: body.account } }) };
}
const applyAction = args.route === 'core' ? await sdkAction() : handOp(driver, { table: args.table, op: 'action' });

/** The saga action through the SDK's `Barrier.call`, answering as `handOp` does (true on a conflict to retry). */
async function sdkAction(): Promise<(gid: string, account: number, amount: number) => Promise<boolean>> {
  const [{ Barrier, BarrierOngoing }, store] = await Promise.all([import('../src/index.js'), sdkStore(driver, args.table)]);
  return async (gid, account, amount) => {
    try {
      const result = await Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' }).call(store, (tx) => driver.update(tx, account, amount));
      if (result.outcome !== 'applied') throw new Error(`the action of ${gid} did not apply: ${result.outcome}`);
      return false;
    } catch (error) {
      if (error instanceof BarrierOngoing || store.dialect.isRetryable(error)) return true;
      throw error;
    }
  };
}

const queryOf = (url: string | undefined) => new URLSearchParams((url ?? '').split('?')[1] ?? '');

async function handServer(): Promise<Server> {
  const answer = (run: () => Promise<{ status: number; body: string }>) =>
    run().catch((error: unknown) => {
      process.stderr.write(`hand-written route failed: ${String(error)}\n`);
      return { status: 500, body: '{"error":"internal error"}' };
    });
  switch (args.front) {
    case 'express': {
      const { default: express } = await import('express');
      const app = express();
      app.use(express.json());
      app.post('/transfer/:branch/:op', async (req, res) => {
        const reply = await answer(() => handBranch(queryOf(req.url), req.body as Transfer));
        res.status(reply.status).type('application/json').send(reply.body);
      });
      return createServer(app);
    }
    case 'fastify': {
      const { default: Fastify } = await import('fastify');
      const app = Fastify();
      app.post('/transfer/*', async (request, reply) => {
        const result = await answer(() => handBranch(queryOf(request.url), request.body as Transfer));
        return reply.code(result.status).type('application/json').send(result.body);
      });
      await app.ready();
      return app.server;
    }
    case 'hono': {
      const [{ Hono }, { createAdaptorServer }] = await Promise.all([import('hono'), import('@hono/node-server')]);
      const app = new Hono();
      app.post('/transfer/*', async (c) => {
        const body = (await c.req.json()) as Transfer;
        const result = await answer(() => handBranch(new URL(c.req.url).searchParams, body));
        return c.body(result.body, result.status as 200, { 'content-type': 'application/json' });
      });
      return createAdaptorServer({ fetch: app.fetch }) as Server;
    }
    case 'koa': {
      const { default: Koa } = await import('koa');
      const app = new Koa();
      app.use(async (ctx) => {
        if (ctx.method !== 'POST' || !ctx.path.startsWith('/transfer/')) return ctx.throw(404);
        // The same stand-in for a body parser as chaos/fronts.ts puts in front of barrierRoute.
        let text = '';
        for await (const chunk of ctx.req) text += chunk;
        const result = await answer(() => handBranch(queryOf(ctx.url), JSON.parse(text) as Transfer));
        ctx.status = result.status;
        ctx.type = 'application/json';
        ctx.body = result.body;
      });
      return createServer(app.callback() as (req: IncomingMessage, res: ServerResponse) => void);
    }
  }
}

const server = await (args.route === 'sdk' ? sdkServer() : handServer());
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : address}\n`);
});
serveBenchmark(server, driver);
