/**
 * A bank as an Express service with the four saga routes of a transfer. Each route is one
 * `barrierRoute`: the coordinator's duplicates, null compensations and late actions never reach
 * the SQL below. All of this example's business SQL is in this file.
 */
import express from 'express';
import { barrierMiddleware, barrierRoute } from '../../adapters/http/express/barrier.js';
import { BarrierFailure } from '../../src/index.js';
import type { ServiceDatabase } from './database.js';

/** The payload of one saga step: the account at this bank and the amount that moves. */
export interface Transfer {
  account: string;
  amount: number;
}

export async function createAccounts(db: ServiceDatabase, balances: Record<string, number>): Promise<void> {
  await db.query(`CREATE TABLE ${db.table('account')} (id VARCHAR(64) PRIMARY KEY, balance INTEGER NOT NULL)`);
  for (const [id, balance] of Object.entries(balances)) {
    await db.query(`INSERT INTO ${db.table('account')} (id, balance) VALUES (?, ?)`, [id, balance]);
  }
}

export async function balances(db: ServiceDatabase): Promise<Record<string, number>> {
  const rows = await db.query(`SELECT id, balance FROM ${db.table('account')} ORDER BY id`);
  return Object.fromEntries(rows.map((row) => [String(row.id), Number(row.balance)]));
}

export function bankApp(db: ServiceDatabase): express.Express {
  // Moves `delta` on one account; an unknown account or a balance that would go negative changes no row.
  const move = async (tx: unknown, { account, amount }: Transfer, sign: 1 | -1) => {
    const delta = sign * amount;
    const changed = await db.run(
      tx,
      `UPDATE ${db.table('account')} SET balance = balance + ? WHERE id = ? AND balance + ? >= 0`,
      [delta, account, delta],
    );
    if (changed === 0) throw new BarrierFailure(`account ${account} is unknown or cannot cover ${amount}`);
  };
  const route = (sign: 1 | -1) => barrierRoute(db.store, (tx, req) => move(tx, transferOf(req.body), sign));

  const app = express();
  app.use(express.json({ limit: '16kb' }));
  app.use('/api', barrierMiddleware());
  app.post('/api/TransOut', route(-1));
  app.post('/api/TransOutCompensate', route(1));
  app.post('/api/TransIn', route(1));
  app.post('/api/TransInCompensate', route(-1));
  return app;
}

/** Checks the payload; a malformed one can never succeed, so the branch fails for good. */
export function transferOf(body: unknown): Transfer {
  const { account, amount } = (body ?? {}) as Partial<Transfer>;
  if (typeof account !== 'string' || !Number.isSafeInteger(amount) || amount! <= 0) {
    throw new BarrierFailure('the payload must be { account: string, amount: positive integer }');
  }
  return { account, amount: amount! };
}
