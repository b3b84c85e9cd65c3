/**
 * The NestJS front on Nest's Express and Fastify platforms: the front conformance suite on every
 * engine, and a short fault-injection run through each, process crashes included. The apps (nest-app/) are compiled
 * the standard Nest way, by tsc with decorator metadata, since vitest's transform emits none; the
 * README's and docs/' Nest examples are compiled with them.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import * as txbarrier from '../../adapters/http/nestjs/barrier.js';
import { startService } from '../../src/testing/index.js';
import { dtmQuery, request } from './express-http.js';
import { documentationFiles } from '../project/docs.js';
import { describeFront, type FrontRoutes, type FrontServer } from './conformance.js';
import { shortChaosRun } from './chaos.js';
import { sqliteHarness } from '../stores/sqlite-harness.js';

const FIXTURE = fileURLToPath(new URL('./nest-app/', import.meta.url));
const OUT = join(FIXTURE, 'dist', randomUUID());
const BUILT = join(OUT, 'build/test/fronts/nest-app');
const PLATFORMS = ['express', 'fastify'] as const;
type Platform = (typeof PLATFORMS)[number];

/**
 * The fixture's app (its transfer app runs in the chaos service's process). The root tsconfig
 * leaves the fixture out: it needs decorator settings of its own.
 */
interface NestApps {
  startNestApp(txb: typeof txbarrier, routes: FrontRoutes<unknown>, platform: Platform): Promise<FrontServer>;
}

let compiled: Promise<NestApps> | undefined;

/**
 * Compiles the apps once for the whole file, with the Nest examples of the README and docs/ beside them (the
 * project's tsconfig has no decorator settings, so test/project/readme.test.ts leaves that block to this
 * file), and loads the app with Node's own `require`, as `node dist/main.js` would.
 */
function nestApps(): Promise<NestApps> {
  compiled ??= (async () => {
    const examples = documentationFiles().flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/```typescript\n([\s\S]*?)```/g)].map((m) => m[1]!));
    expect(examples.some((code) => code.includes("from 'txbarrier/nestjs'"))).toBe(true);
    mkdirSync(join(OUT, 'readme'), { recursive: true });
    // Each documented example as an ES module of its own, `txbarrier` resolved to the sources.
    writeFileSync(join(OUT, 'readme', 'package.json'), '{ "type": "module" }');
    const files = examples.map((code, i) => {
      const file = join(OUT, 'readme', `example-${i + 1}.ts`);
      writeFileSync(file, `${code}\nexport {};\n`);
      return file;
    });
    const root = process.cwd();
    const config = {
      extends: join(FIXTURE, 'tsconfig.json'),
      compilerOptions: { outDir: join(OUT, 'build'), paths: { txbarrier: [join(root, 'src/index.ts')], 'txbarrier/nestjs': [join(root, 'adapters/http/nestjs/barrier.ts')], 'txbarrier/*': [join(root, 'adapters/stores/*.ts')] } },
      files: [join(FIXTURE, 'app.ts'), join(FIXTURE, 'transfer.ts'), ...files],
    };
    writeFileSync(join(OUT, 'tsconfig.json'), JSON.stringify(config));
    await promisify(execFile)(join(root, 'node_modules/.bin/tsc'), ['-p', join(OUT, 'tsconfig.json')], { timeout: 120_000 }).catch((error) => {
      throw new Error(`tsc failed:\n${error.stdout}`);
    });
    const load = createRequire(import.meta.url);
    return load(join(BUILT, 'app.js')) as NestApps;
  })();
  return compiled;
}

afterAll(() => rmSync(OUT, { recursive: true, force: true }));

for (const platform of PLATFORMS) {
  describeFront(`nestjs (${platform})`, async (routes) => (await nestApps()).startNestApp(txbarrier, routes as FrontRoutes<unknown>, platform));
}

describe.each(PLATFORMS)('nestjs (%s) specifics, on sqlite', (platform) => {
  it("an HttpException from the method rolls back and gets Nest's answer; @BarrierTx() without @UseBarrier() is a clear 500", async () => {
    const h = await sqliteHarness();
    const routes: FrontRoutes<unknown> = { store: h.store, branches: { '/note': { run: (tx, barrier) => h.record(tx as never, barrier.gid, barrier.op) } }, middlewareNote: () => undefined };
    const server = await (await nestApps()).startNestApp(txbarrier, routes, platform);
    try {
      const gid = `nest-${randomUUID()}`;
      const refused = await request(`${server.url}/refused?${dtmQuery(gid, 'action')}`);
      expect([refused.status, refused.json]).toEqual([400, { statusCode: 400, message: 'amount must be positive', error: 'Bad Request' }]);
      expect(await h.notes(gid)).toEqual([]);
      expect(await h.barrierRows(gid)).toEqual([]);
      const misused = await request(`${server.url}/misused?${dtmQuery(gid, 'action')}`);
      expect(misused.status).toBe(500);
      expect(server.reported!.map(String)).toEqual([expect.stringContaining('@BarrierTx() is only given in a method decorated with @UseBarrier()')]);
    } finally {
      await server.close();
      await h.close();
    }
  });
});

const SERVICE = fileURLToPath(new URL('./nestjs-chaos-service.ts', import.meta.url));

describe.each(PLATFORMS)('chaos through nestjs (%s)', (platform) => {
  it('keeps every invariant through the app and its crashes, and every anomaly reaches the service', async () => {
    await nestApps();
    await shortChaosRun(async (_bank, config) => {
      const service = await startService({
        command: process.execPath,
        args: ['--import', 'tsx', SERVICE],
        env: { CHAOS_BANK: JSON.stringify(config), NEST_TRANSFER_APP: join(BUILT, 'transfer.js'), NEST_PLATFORM: platform },
      });
      const url = (branch: string, op: string) => `${service.url}/transfer/${branch}/${op}`;
      return { handlers: (branch) => ({ action: url(branch, 'action'), compensate: url(branch, 'compensate') }), service, close: () => service.stop() };
    });
  }, 90_000);
});
