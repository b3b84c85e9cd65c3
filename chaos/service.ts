/**
 * The handler service `npm run chaos` SIGKILLs: the two transfer branches behind `barrierRoute` in
 * the front named by `CHAOS_FRONT` (default express), on `PORT`, for the bank in `CHAOS_BANK`.
 * Prints `ready` once listening.
 */
import { openBank, type BankConfig } from './bank.js';
import { branchServer, type FrontName } from './fronts.js';

const bank = await openBank(JSON.parse(process.env.CHAOS_BANK!) as BankConfig);
const front = (process.env.CHAOS_FRONT ?? 'express') as FrontName;
const server = await branchServer(front, bank.store, (tx, { barrier: { gid, branchId, op }, body, header }) =>
  bank.apply(tx, { gid, branchId, op, payload: body, fault: header('txbarrier-fault') }),
);
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
