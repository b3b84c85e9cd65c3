/**
 * The short fault-injection run `npm test` gives the NestJS and gRPC fronts: the chaos bank on
 * SQLite, its transfer branches served by the front under test, 120 sagas of a fixed seed, every
 * invariant kept and every anomaly delivered. A front served from a process of its own gets
 * process crashes too.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type Bank, type BankConfig, openBank, randomTransfer } from '../../chaos/bank.js';
import { type BranchHandlers, formatViolations, runChaos, type Service } from '../../src/testing/index.js';

/** The front under test, serving the bank's branches: a handler per branch id, and how to stop it. */
export interface ServedBank {
  handlers(branchId: string): BranchHandlers;
  /** The process serving them, when it is one the run may SIGKILL. */
  service?: Service;
  close(): Promise<void>;
}

export async function shortChaosRun(serve: (bank: Bank, config: BankConfig) => Promise<ServedBank>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-chaos-'));
  const config: BankConfig = { engine: 'sqlite', prefix: `chaos_${randomBytes(4).toString('hex')}`, sqliteFile: join(dir, 'bank.db') };
  const bank = await openBank(config);
  try {
    await bank.create();
    const served = await serve(bank, config);
    try {
      const report = await runChaos({
        branches: ['01', '02'].map((branchId) => served.handlers(branchId)),
        check: (sagas) => bank.check(sagas),
        sagas: 120,
        seed: 9,
        payload: randomTransfer,
        // Seed 9's plan at these rates: one crash after a reply and two during a request (a restart costs seconds).
        ...(served.service ? { service: served.service, faults: { 'crash-between': 0.03, 'crash-during': 0.003 } } : {}),
      });
      expect(report.violations, formatViolations(report)).toEqual([]);
      if (served.service) {
        expect(report.faults['crash-between']).toBeGreaterThan(0);
        expect(report.faults['crash-during']).toBeGreaterThan(0);
      }
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
