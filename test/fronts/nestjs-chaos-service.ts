/**
 * The Nest service the Nest chaos run SIGKILLs: the compiled transfer app (`NEST_TRANSFER_APP`, built
 * by test/fronts/nestjs.test.ts) on `NEST_PLATFORM`, serving the bank in `CHAOS_BANK` on `PORT`. Prints
 * `ready` once listening.
 */
import { createRequire } from 'node:module';
import * as txbarrier from '../../adapters/http/nestjs/barrier.js';
import { type BankConfig, type BranchWork, openBank } from '../../chaos/bank.js';
import type { BarrierStore } from '../../src/index.js';

interface TransferApp {
  startTransferApp(txb: typeof txbarrier, store: BarrierStore<unknown>, work: (tx: unknown, work: BranchWork) => unknown, platform: string, port: number): Promise<unknown>;
}

const bank = await openBank(JSON.parse(process.env.CHAOS_BANK!) as BankConfig);
const { startTransferApp } = createRequire(import.meta.url)(process.env.NEST_TRANSFER_APP!) as TransferApp;
await startTransferApp(txbarrier, bank.store, (tx, work) => bank.apply(tx, work), process.env.NEST_PLATFORM!, Number(process.env.PORT));
console.log('ready');
