import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type express from 'express';
import type { OutcomeEvent } from '../src/index.js';
import { configFromEnv, openDatabase, type ServiceDatabase } from './saga/database.js';

/** What each example's bank module provides. */
export interface BankModule {
  createAccounts(db: ServiceDatabase, balances: Record<string, number>): Promise<void>;
  bankApp(db: ServiceDatabase): express.Express;
}

/**
 * Bank A (alice: 1000) and bank B (bob: 0) as Express services on loopback, each with its own
 * database (a SQLite file, or a database/schema of the server in TXBARRIER_MYSQL_URL /
 * TXBARRIER_POSTGRES_URL), counting the barrier's outcomes.
 */
export async function startTwoBanks(name: string, bank: BankModule) {
  const dir = mkdtempSync(join(tmpdir(), `txbarrier-${name}-`));
  const config = configFromEnv(dir);
  const seen: Record<string, number> = {};
  const hooks = { onOutcome: ({ outcome }: OutcomeEvent) => void (seen[outcome] = (seen[outcome] ?? 0) + 1) };

  const bankA = await openDatabase(config, `txbarrier_example_${name}_a`, hooks);
  const bankB = await openDatabase(config, `txbarrier_example_${name}_b`, hooks);
  await bank.createAccounts(bankA, { alice: 1000 });
  await bank.createAccounts(bankB, { bob: 0 });
  const servers = [bank.bankApp(bankA).listen(0, '127.0.0.1'), bank.bankApp(bankB).listen(0, '127.0.0.1')];
  await Promise.all(servers.map((server) => once(server, 'listening')));
  const [urlA, urlB] = servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`) as [string, string];
  console.log(`bank A at ${urlA}, bank B at ${urlB}, on ${config.engine}`);

  return {
    bankA,
    bankB,
    urlA,
    urlB,
    /** Barrier outcomes by kind, across both banks. */
    seen,
    async stop() {
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      await bankA.close({ drop: true });
      await bankB.close({ drop: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
