/**
 * One engine's chaos run over HTTP through one front: this run's own tables, the handler service
 * as a child process the harness may SIGKILL, the transfer saga, and the bank's invariants.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChaosReport, type FaultKind, runChaos, startService } from '../src/testing/index.js';
import { type BankConfig, openBank, randomTransfer } from './bank.js';
import type { FrontName } from './fronts.js';
import type { EngineName } from '../servers/index.js';

export interface EngineChaosOptions {
  engine: EngineName;
  /** The HTTP front the service answers through (default express). */
  front?: FrontName;
  sagas: number;
  seed?: number;
  concurrency?: number;
  /** Over the harness's defaults and this suite's (see `SUITE_FAULTS`). */
  faults?: Partial<Record<FaultKind, number>>;
  /** Keep this run's tables (and SQLite file) for inspection. */
  keep?: boolean;
}

/** Crashes cost a restart (about a second) each, so a long run needs far fewer per saga than the default. */
const SUITE_FAULTS = { 'crash-between': 0.001, 'crash-during': 0.001 };

const SERVICE = fileURLToPath(new URL('./service.ts', import.meta.url));

export async function chaosOverHttp({ engine, front = 'express', sagas, seed, concurrency = 16, faults, keep = false }: EngineChaosOptions): Promise<ChaosReport> {
  const dir = engine === 'sqlite' ? mkdtempSync(join(tmpdir(), 'txbarrier-chaos-')) : undefined;
  const config: BankConfig = {
    engine,
    prefix: `chaos_${randomBytes(4).toString('hex')}`,
    ...(dir ? { sqliteFile: join(dir, 'bank.db') } : {}),
  };
  const bank = await openBank(config);
  try {
    await bank.create();
    const service = await startService({
      command: process.execPath,
      args: ['--import', 'tsx', SERVICE],
      env: { CHAOS_BANK: JSON.stringify(config), CHAOS_FRONT: front },
      stderr: 'collect',
    });
    try {
      const url = (branch: string, op: string) => `${service.url}/transfer/${branch}/${op}`;
      const report = await runChaos({
        branches: ['01', '02'].map((branch) => ({ action: url(branch, 'action'), compensate: url(branch, 'compensate') })),
        check: (results) => bank.check(results),
        service,
        sagas,
        concurrency,
        payload: randomTransfer,
        faults: { ...SUITE_FAULTS, 'kill-transaction': bank.canKillTransactions ? 0.03 : 0, ...faults },
        ...(seed === undefined ? {} : { seed }),
      });
      unexpectedOutput(service.stderr());
      return report;
    } finally {
      await service.stop();
    }
  } finally {
    if (!keep) await bank.drop();
    await bank.close();
    if (keep) console.log(`${engine}: kept tables ${config.prefix}_*${dir ? ` in ${config.sqliteFile}` : ''}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

// The faults kill connections and transactions, so the service answers some requests 500 and
// reports each one (a process warning with its stack). Anything else on its stderr is a defect.
const PROVOKED = [/^\(node:\d+\) TxbarrierWarning: txbarrier: answered 500: /, /^\s+at /, /^\(Use `node --trace-warnings/, /^\s*$/];

function unexpectedOutput(stderr: string): void {
  const other = stderr.split('\n').filter((line) => !PROVOKED.some((pattern) => pattern.test(line)));
  if (other.length > 0) throw new Error(`the chaos service printed more than the 500s its faults provoke:\n${stderr}`);
}
