/**
 * A bank as an Express service with the six TCC routes of a transfer. A try holds the amount in
 * the `frozen` column, confirm settles it, cancel releases it. Without the barrier a try that
 * arrives after its cancel (a dangling try) would freeze the money for good; behind
 * `barrierRoute` it is absorbed. All of this example's business SQL is in this file.
 */
import express from 'express';
import { barrierMiddleware, barrierRoute } from '../../adapters/http/express/barrier.js';
import { BarrierFailure } from '../../src/index.js';
import { type Transfer, transferOf } from '../saga/bank.js';
import type { ServiceDatabase } from '../saga/database.js';

export async function createAccounts(db: ServiceDatabase, balances: Record<string, number>): Promise<void> {
  await db.query(
    `CREATE TABLE ${db.table('account')} (id VARCHAR(64) PRIMARY KEY, balance INTEGER NOT NULL, frozen INTEGER NOT NULL DEFAULT 0)`,
  );
  for (const [id, balance] of Object.entries(balances)) {
    await db.query(`INSERT INTO ${db.table('account')} (id, balance) VALUES (?, ?)`, [id, balance]);
  }
}

export async function accounts(db: ServiceDatabase): Promise<Record<string, { balance: number; frozen: number }>> {
  const rows = await db.query(`SELECT id, balance, frozen FROM ${db.table('account')} ORDER BY id`);
  return Object.fromEntries(rows.map((row) => [String(row.id), { balance: Number(row.balance), frozen: Number(row.frozen) }]));
}

/** How each op moves money between `balance` (spendable) and `frozen` (held by an open transfer), per unit of the amount. */
const MOVES = {
  TransOutTry: { balance: -1, frozen: 1 },
  TransOutConfirm: { balance: 0, frozen: -1 },
  TransOutCancel: { balance: 1, frozen: -1 },
  TransInTry: { balance: 0, frozen: 1 },
  TransInConfirm: { balance: 1, frozen: -1 },
  TransInCancel: { balance: 0, frozen: -1 },
} as const;

export function bankApp(db: ServiceDatabase): express.Express {
  // An unknown account, or a balance that would go negative, changes no row.
  const move = async (tx: unknown, { account, amount }: Transfer, units: { balance: number; frozen: number }) => {
    const [balance, frozen] = [units.balance * amount, units.frozen * amount];
    const changed = await db.run(
      tx,
      `UPDATE ${db.table('account')} SET balance = balance + ?, frozen = frozen + ? WHERE id = ? AND balance + ? >= 0`,
      [balance, frozen, account, balance],
    );
    if (changed === 0) throw new BarrierFailure(`account ${account} is unknown or cannot cover ${amount}`);
  };

  const app = express();
  app.use(express.json({ limit: '16kb' }));
  app.use('/api', barrierMiddleware());
  for (const [name, units] of Object.entries(MOVES)) {
    app.post(`/api/${name}`, barrierRoute(db.store, (tx, req) => move(tx, transferOf(req.body), units)));
  }
  return app;
}
