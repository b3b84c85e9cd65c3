/**
 * A short fault-injection run through the gRPC front: the chaos bank's transfer branches behind
 * `barrierHandler`, served over real gRPC (a hand-written service whose messages are JSON), each
 * delivery sent as DTM's gRPC transport sends it and its status read as DTM reads it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { barrierHandler } from '../adapters/grpc.js';
import { openBank, randomTransfer } from '../chaos/bank.js';
import { type Delivery, formatViolations, runChaos } from '../src/testing/index.js';
import { asHandlerResult, callGrpc, dtmMetadata, jsonService, serveGrpc } from './grpc-front.js';

it('keeps every invariant through the gRPC front, and every anomaly reaches the service', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-chaos-'));
  const bank = await openBank({ engine: 'sqlite', prefix: `chaos_${randomBytes(4).toString('hex')}`, sqliteFile: join(dir, 'bank.db') });
  try {
    await bank.create();
    const serving = await serveGrpc(jsonService(['Transfer']), {
      Transfer: barrierHandler(bank.store, async (tx, call) => {
        const { gid, branchId, op } = call.barrier;
        await bank.apply(tx, { gid, branchId, op, payload: call.request, fault: call.metadata.get('txbarrier-fault')[0]?.toString() });
        return {};
      }),
    });
    try {
      const send = async ({ gid, transType, branchId, op, payload, fault }: Delivery) => {
        const metadata = dtmMetadata({ gid, trans_type: transType, branch_id: branchId, op });
        if (fault) metadata.set('txbarrier-fault', fault);
        return asHandlerResult(await callGrpc(serving.client, 'Transfer', payload, metadata));
      };
      const report = await runChaos({
        branches: [
          { action: send, compensate: send },
          { action: send, compensate: send },
        ],
        check: (sagas) => bank.check(sagas),
        sagas: 120,
        seed: 9,
        payload: randomTransfer,
      });
      expect(report.violations, formatViolations(report)).toEqual([]);
      for (const outcome of ['applied', 'duplicate', 'null-compensation', 'dangling', 'failure']) {
        expect(report.replies[outcome], outcome).toBeGreaterThan(0);
      }
    } finally {
      await serving.close();
    }
  } finally {
    await bank.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
