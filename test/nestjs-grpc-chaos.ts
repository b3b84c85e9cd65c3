/**
 * The short fault-injection run `npm test` gives the NestJS and gRPC fronts: the chaos bank on
 * SQLite, its transfer branches served by the front under test, 120 sagas of a fixed seed, every
 * invariant kept and every anomaly delivered. No process crashes: the front runs in this process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type Bank, openBank, randomTransfer } from '../chaos/bank.js';
import { type BranchHandlers, formatViolations, runChaos } from '../src/testing/index.js';

/** The front under test, serving `bank`'s branches: a handler per branch id, and how to stop it. */
export interface ServedBank {
  handlers(branchId: string): BranchHandlers;
  close(): Promise<void>;
}

export async function shortChaosRun(serve: (bank: Bank) => Promise<ServedBank>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-chaos-'));
  const bank = await openBank({ engine: 'sqlite', prefix: `chaos_${randomBytes(4).toString('hex')}`, sqliteFile: join(dir, 'bank.db') });
  try {
    await bank.create();
    const served = await serve(bank);
    try {
      const report = await runChaos({
        branches: ['01', '02'].map((branchId) => served.handlers(branchId)),
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
      await served.close();
    }
  } finally {
    await bank.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
