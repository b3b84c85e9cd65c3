/**
 * A short fault-injection run through the gRPC front: the chaos bank's transfer branches behind
 * `barrierHandler`, served over real gRPC (a hand-written service whose messages are JSON), each
 * delivery sent as DTM's gRPC transport sends it and its status read as DTM reads it.
 */
import { it } from 'vitest';
import { barrierHandler } from '../adapters/grpc.js';
import type { Delivery } from '../src/testing/index.js';
import { asHandlerResult, callGrpc, dtmMetadata, jsonService, serveGrpc } from './grpc-front.js';
import { shortChaosRun } from './nestjs-grpc-chaos.js';

it('keeps every invariant through the gRPC front, and every anomaly reaches the service', async () => {
  await shortChaosRun(async (bank) => {
    const serving = await serveGrpc(jsonService(['Transfer']), {
      Transfer: barrierHandler(bank.store, async (tx, call) => {
        const { gid, branchId, op } = call.barrier;
        await bank.apply(tx, { gid, branchId, op, payload: call.request, fault: call.metadata.get('txbarrier-fault')[0]?.toString() });
        return {};
      }),
    });
    const send = async ({ gid, transType, branchId, op, payload, fault }: Delivery) => {
      const metadata = dtmMetadata({ gid, trans_type: transType, branch_id: branchId, op });
      if (fault) metadata.set('txbarrier-fault', fault);
      return asHandlerResult(await callGrpc(serving.client, 'Transfer', payload, metadata));
    };
    return { handlers: () => ({ action: send, compensate: send }), close: () => serving.close() };
  });
}, 60_000);
