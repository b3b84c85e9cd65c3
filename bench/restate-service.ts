/**
 * One variant of bench/restate.ts in a process of its own (Node >= 22): a Restate service whose
 * handler `steps` runs `n` `ctx.run` steps, each one PostgreSQL transaction updating one account,
 * with the barrier (`runStep`) or without it (plain `ctx.run`, the same transaction). Prints `ready`
 * once it listens; SIGTERM stops it.
 */
import { writeSync } from 'node:fs';
import * as restate from '@restatedev/restate-sdk';
import pg from 'pg';
import { runStep } from '../adapters/engines/restate.js';
import { postgresStore } from '../adapters/stores/postgres.js';

export interface BenchServiceArgs {
  name: string;
  port: number;
  url: string;
  accounts: string;
  barrierTable: string;
  guarded: boolean;
}

export interface StepsInput {
  account: string;
  n: number;
}

const args = JSON.parse(process.argv[2]!) as BenchServiceArgs;
const pool = new pg.Pool({ connectionString: args.url, max: 16 });
const store = postgresStore(pool, { table: args.barrierTable });
const update = (account: string) => async (client: pg.PoolClient) => {
  await client.query(`UPDATE ${args.accounts} SET balance = balance + 1 WHERE id = $1`, [account]);
};

const service = restate.service({
  name: args.name,
  handlers: {
    async steps(ctx: restate.Context, { account, n }: StepsInput): Promise<number> {
      for (let i = 0; i < n; i++) {
        if (args.guarded) await runStep(ctx, 'step', (barrier) => barrier.call(store, update(account)).then((r) => r.outcome));
        else await ctx.run('step', () => store.transaction((connection) => update(account)(connection.tx)));
      }
      return n;
    },
  },
});
await restate.serve({
  services: [service],
  port: args.port,
  logger: (meta, message, ...rest) => {
    // The endpoint's notice at start that it checks no request signatures (a loopback bench) is not news.
    if (String(message).startsWith('Accepting requests without validating request signatures')) return;
    if (['warn', 'error'].includes(meta.level)) writeSync(2, `${meta.level} ${[message, ...rest].map(String).join(' ')}\n`);
  },
});
writeSync(1, 'ready\n');
process.once('SIGTERM', () => void pool.end().then(() => process.exit(0)));
