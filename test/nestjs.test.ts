/**
 * The NestJS front on Nest's Express and Fastify platforms: the front conformance suite on every
 * engine, and a short fault-injection run through each. The apps (fixtures/nest-app) are compiled
 * the standard Nest way, by tsc with decorator metadata, since vitest's transform emits none.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import * as txbarrier from '../adapters/nestjs.js';
import { type BranchWork, openBank, randomTransfer } from '../chaos/bank.js';
import type { BarrierStore } from '../src/index.js';
import { formatViolations, runChaos } from '../src/testing/index.js';
import { type Listening } from './express-http.js';
import { describeFront, type FrontRoutes, type FrontServer } from './fronts.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/nest-app/', import.meta.url));
const OUT = join(FIXTURE, 'dist', randomUUID());
const PLATFORMS = ['express', 'fastify'] as const;
type Platform = (typeof PLATFORMS)[number];

/** The fixture's exports; the root tsconfig leaves the fixture out, as it needs decorator settings of its own. */
interface NestApps {
  startNestApp(txb: typeof txbarrier, routes: FrontRoutes<unknown>, platform: Platform): Promise<FrontServer>;
  startTransferApp(txb: typeof txbarrier, store: BarrierStore<unknown>, work: (tx: unknown, work: BranchWork) => unknown, platform: Platform): Promise<Listening>;
}

let compiled: Promise<NestApps> | undefined;

/** Compiles the apps once for the whole file, and loads them with Node's own `require`, as `node dist/main.js` would. */
function nestApps(): Promise<NestApps> {
  compiled ??= promisify(execFile)(join(process.cwd(), 'node_modules/.bin/tsc'), ['-p', join(FIXTURE, 'tsconfig.json'), '--outDir', OUT], {
    timeout: 120_000,
  }).then(() => {
    const load = createRequire(import.meta.url);
    return { ...load(join(OUT, 'test/fixtures/nest-app/app.js')), ...load(join(OUT, 'test/fixtures/nest-app/transfer.js')) } as NestApps;
  });
  return compiled;
}

afterAll(() => rmSync(OUT, { recursive: true, force: true }));

for (const platform of PLATFORMS) {
  describeFront(`nestjs (${platform})`, async (routes) => (await nestApps()).startNestApp(txbarrier, routes as FrontRoutes<unknown>, platform));
}

describe.each(PLATFORMS)('chaos through nestjs (%s)', (platform) => {
  it('keeps every invariant, and every anomaly reaches the service', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'txbarrier-chaos-'));
    const bank = await openBank({ engine: 'sqlite', prefix: `chaos_${randomBytes(4).toString('hex')}`, sqliteFile: join(dir, 'bank.db') });
    try {
      await bank.create();
      const server = await (await nestApps()).startTransferApp(txbarrier, bank.store, (tx, work) => bank.apply(tx, work), platform);
      try {
        const url = (branch: string, op: string) => `${server.url}/transfer/${branch}/${op}`;
        const report = await runChaos({
          branches: ['01', '02'].map((branch) => ({ action: url(branch, 'action'), compensate: url(branch, 'compensate') })),
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
        await server.close();
      }
    } finally {
      await bank.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
