/**
 * Which database servers this test run reached (their URLs are in servers/index.ts). On a laptop a
 * missing server is skipped and said so; with TXBARRIER_REQUIRE_DBS=1 (as .ci/run sets) a missing
 * server fails the run.
 *
 * The suite writes only to a database of its own (`txbarrier_test` unless the URL names another),
 * which the global setup creates if missing: never a shared `test` database or DTM's `dtm_barrier`.
 */
import { inject } from 'vitest';
import type { EngineName } from '../../servers/index.js';

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

const only = process.env.TXBARRIER_ENGINES?.split(',').map((engine) => engine.trim());

/**
 * Whether this run tests `engine` at all. `TXBARRIER_ENGINES` (comma-separated) narrows a run to
 * some engines, as the PostgreSQL 18 suite does (`postgres`); unset, every engine. Tests of an engine
 * left out are not defined (rather than skipped): wrap them in `if (testsEngine(...))` or filter a
 * list of engines with it.
 */
export function testsEngine(engine: EngineName | 'pglite'): boolean {
  return only === undefined || only.includes(engine);
}
