/**
 * Starts the pinned DTM server once for the DTM suite and hands its address to the test files.
 * When it cannot be built or started, the suite's tests are skipped and said so plainly; with
 * TXBARRIER_REQUIRE_DTM=1 (as .ci/run sets) that fails the run instead.
 */
import type { TestProject } from 'vitest/node';
import { DTM_VERSION, type DtmServer, startDtm } from '../../../servers/dtm.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** DTM's HTTP API base and gRPC address, or `undefined` when the server could not be had. */
    dtm: { httpApi: string; grpcAddress: string } | undefined;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: DtmServer | undefined;
  try {
    server = await startDtm();
  } catch (error) {
    const problem = error instanceof Error ? error.message : String(error);
    if (process.env.TXBARRIER_REQUIRE_DTM === '1') throw new Error(`TXBARRIER_REQUIRE_DTM=1 but the DTM server could not be started: ${problem}`);
    console.warn(`\ntxbarrier: SKIPPING the DTM suite: the DTM ${DTM_VERSION} server could not be started (Go 1.26 at /usr/local/go and the Go module proxy build it):\n  ${problem}\n`);
  }
  project.provide('dtm', server && { httpApi: server.httpApi, grpcAddress: server.grpcAddress });
  return async () => {
    await server?.stop();
  };
}
