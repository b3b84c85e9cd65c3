/**
 * Which database servers this test run reached (their URLs are in servers/index.ts). On a laptop a
 * missing server is skipped and said so; with TXBARRIER_REQUIRE_DBS=1 (as .ci/run sets) a missing
 * server fails the run.
 *
 * The suite writes only to a database of its own (`txbarrier_test` unless the URL names another),
 * which the global setup creates if missing: never a shared `test` database or DTM's `dtm_barrier`.
 */
import { inject } from 'vitest';

export type Engine = 'mysql' | 'postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    servers: Record<Engine, boolean>;
  }
}

/** True when the global setup reached the server; use with `describe.skipIf(!hasServer('mysql'))`. */
export function hasServer(engine: Engine): boolean {
  return inject('servers')[engine];
}
