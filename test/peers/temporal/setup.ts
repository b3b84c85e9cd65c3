/**
 * The Temporal suite's global setup: starts a dev server (built once per machine; see
 * servers/temporal.ts) and bundles the workflow code once for every worker of the run. A server
 * that cannot be built or started fails the suite: `npm run test:temporal` never skips.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startTemporal } from '../../../servers/temporal.js';
import type { TemporalContext } from './context.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const server = await startTemporal();
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-workflows-'));
  try {
    const { code } = await bundleWorkflowCode({ workflowsPath: resolve('test/peers/temporal/workflows.ts'), logger: new DefaultLogger('WARN') });
    const bundle = join(dir, 'workflows.js');
    writeFileSync(bundle, code);
    const context: TemporalContext = { address: server.address, namespace: server.namespace, bundle };
    project.provide('temporal', context);
    console.log(`\ntxbarrier: Temporal dev server on ${server.address}, workflows bundled (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
