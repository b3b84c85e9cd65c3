/** The default suite's postgres.js tests on postgres.js 3, the older major of the peer range (the default suite runs 4). */
import postgres from 'postgres';
import { expect, it } from 'vitest';
import '../../stores/postgres-js.test.js';

it('runs on postgres.js 3 (the alias took effect: sql.array, which 4 removed, still works)', async () => {
  const sql = postgres({ max: 1 }) as unknown as { array(values: unknown[]): unknown; end(): Promise<void> };
  try {
    expect(() => sql.array([1])).not.toThrow();
  } finally {
    await sql.end();
  }
});
