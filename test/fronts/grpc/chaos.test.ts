/**
 * A short fault-injection run through the gRPC front: the chaos bank's transfer branches behind
 * `barrierHandler` in a service process the run SIGKILLs (test/fronts/grpc/chaos-service.ts), served over
 * real gRPC (a hand-written service whose messages are JSON), each delivery sent as DTM's gRPC
 * transport sends it and its status read as DTM reads it.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { it } from 'vitest';
import { type Delivery, startService } from '../../../src/testing/index.js';
import { asHandlerResult, callGrpc, dtmMetadata } from './front.js';
import { jsonService } from './json.js';
import { shortChaosRun } from '../chaos.js';

const SERVICE = fileURLToPath(new URL('./chaos-service.ts', import.meta.url));

it('keeps every invariant through the gRPC front and its crashes, and every anomaly reaches the service', async () => {
  await shortChaosRun(async (_bank, config) => {
    const service = await startService({ command: process.execPath, args: ['--import', 'tsx', SERVICE], env: { CHAOS_BANK: JSON.stringify(config) } });
    const Client = grpc.makeGenericClientConstructor(jsonService(['Transfer']), 'Transfer');
    // Reconnect soon after a restart, as a coordinator's channel to a supervised service would.
    const client = new Client(new URL(service.url).host, grpc.credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 200,
    });
    const send = async ({ gid, transType, branchId, op, payload, fault }: Delivery) => {
      const metadata = dtmMetadata({ gid, trans_type: transType, branch_id: branchId, op });
      if (fault) metadata.set('txbarrier-fault', fault);
      return asHandlerResult(await callGrpc(client, 'Transfer', payload, metadata));
    };
    return {
      handlers: () => ({ action: send, compensate: send }),
      service,
      close: async () => {
        client.close();
        await service.stop();
      },
    };
  });
}, 60_000);
