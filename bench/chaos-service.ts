/**
 * The handler service `npm run chaos` SIGKILLs: an Express app with the two transfer branches
 * behind `barrierRoute`, on `PORT`, for the bank in `CHAOS_BANK`. Prints `ready` once listening.
 */
import express from 'express';
import { barrierRoute } from '../adapters/express.js';
import { type BankConfig, openBank } from './chaos-bank.js';

const bank = await openBank(JSON.parse(process.env.CHAOS_BANK!) as BankConfig);
const app = express();
app.use(express.json());
const route = barrierRoute(bank.store, (tx, req) => {
  const { gid, branchId, op } = req.barrier;
  return bank.apply(tx, { gid, branchId, op, payload: req.body, fault: req.headers['txbarrier-fault'] as string | undefined });
});
// DTM names one URL per op; the op also travels in the query, which is what the barrier reads.
app.post('/transfer/:branch/:op', route);
app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
