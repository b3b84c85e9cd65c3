/**
 * The Restate suite's global setup: starts a Restate server (fetched once per machine; see
 * servers/restate.ts) for the whole run, and stops it after. Restate's TypeScript SDK calls
 * `Promise.withResolvers`, so it needs Node >= 22: on an older Node the suite is skipped and says
 * why, except in CI (CI=true or TXBARRIER_REQUIRE_RESTATE=1), where that fails the run. A server
 * that cannot be fetched or started fails the run: `npm run test:restate` never skips for that.
 */
import type { TestProject } from 'vitest/node';
import { startRestate } from '../../../servers/restate.js';
import type { RestateContext } from './context.js';

export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  if (NODE_MAJOR < 22) {
    const why = `Restate's TypeScript SDK needs Node >= 22 (it calls Promise.withResolvers); this is Node ${process.versions.node}`;
    if (process.env.CI === 'true' || process.env.TXBARRIER_REQUIRE_RESTATE === '1') throw new Error(`${why}: run the suite on Node 22 or 24 (.ci/run does, with on_node 22)`);
    console.warn(`\ntxbarrier: SKIPPING the Restate suite: ${why}.\n`);
    project.provide('restate', { ingress: '', admin: '', skipped: why } satisfies RestateContext);
    return undefined;
  }
  const started = Date.now();
  const server = await startRestate();
  project.provide('restate', { ingress: server.ingress, admin: server.admin } satisfies RestateContext);
  console.log(`\ntxbarrier: Restate server on ${server.ingress} (admin ${server.admin}), up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return () => server.stop();
}
