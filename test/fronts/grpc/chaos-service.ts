/**
 * The gRPC handler service the gRPC chaos run SIGKILLs: the chaos bank's transfer branches behind
 * `barrierHandler`, on `PORT`, for the bank in `CHAOS_BANK`. Prints `ready` once listening.
 */
import * as grpc from '@grpc/grpc-js';
import { barrierHandler } from '../../../adapters/grpc.js';
import { type BankConfig, openBank } from '../../../chaos/bank.js';
import { jsonService } from './json.js';

const bank = await openBank(JSON.parse(process.env.CHAOS_BANK!) as BankConfig);
const server = new grpc.Server();
server.addService(jsonService(['Transfer']), {
  Transfer: barrierHandler(bank.store, async (tx, call) => {
    const { gid, branchId, op } = call.barrier;
    await bank.apply(tx, { gid, branchId, op, payload: call.request, fault: call.metadata.get('txbarrier-fault')[0]?.toString() });
    return {};
  }),
});
server.bindAsync(`127.0.0.1:${process.env.PORT}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) throw error;
  console.log('ready');
});
