/**
 * Which database servers the tests may use. On a laptop a missing server is skipped and said so;
 * with TXBARRIER_REQUIRE_DBS=1 (as .ci/run sets) a missing server fails the run.
 *
 * The suite writes only to a database of its own (`txbarrier_test` unless the URL names another),
 * which the global setup creates if missing: never a shared `test` database or DTM's `dtm_barrier`.
 */
import { inject } from 'vitest';

export const MYSQL_URL = process.env.TXBARRIER_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/txbarrier_test';
export const POSTGRES_URL = process.env.TXBARRIER_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/txbarrier_test';

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
