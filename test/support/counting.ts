import type { PostgresPool } from '../../adapters/stores/postgres.js';

/** A pg pool whose clients record each statement's text in `sent`: a store made on it sees only `connect`. */
export function countingPostgresPool(pool: PostgresPool, sent: string[]): PostgresPool {
  return {
    connect: async () =>
      new Proxy(await pool.connect(), {
        get: (target, key) =>
          key === 'query' ? (sql: string, params?: unknown[]) => (sent.push(sql), target.query(sql, params)) : Reflect.get(target, key, target),
      }),
  };
}
