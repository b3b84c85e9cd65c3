/**
 * `txbarrier/bun-sqlite` where there is no bun:sqlite: it loads, and refuses any other database with
 * a typed error that names what is missing and the store for this runtime. Its scenarios run on Bun
 * (test/runtimes/bun-sqlite.scenarios.ts, `npm run test:bun`).
 */
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { bunSqliteStore } from '../../adapters/stores/bun-sqlite.js';
import { BarrierConfigError } from '../../src/index.js';

it('refuses a better-sqlite3 database with ERR_TXBARRIER_BUN_SQLITE, writing nothing, and names the stores for Node', () => {
  const db = new Database(':memory:');
  const error = (() => {
    try {
      bunSqliteStore(db as never);
    } catch (e) {
      return e;
    }
  })();
  expect(error).toBeInstanceOf(BarrierConfigError);
  expect(error).toMatchObject({ code: 'ERR_TXBARRIER_BUN_SQLITE' });
  expect((error as Error).message).toBe(
    'bunSqliteStore needs a bun:sqlite Database; this one has no filename. bun:sqlite exists only on Bun: use nodeSqliteStore from ' +
      'txbarrier/node-sqlite (Node 22.16 or later, Deno), or sqliteStore from txbarrier/sqlite with better-sqlite3.',
  );
  expect(db.prepare("SELECT COUNT(*) AS n FROM sqlite_master").get()).toEqual({ n: 0 });
  db.close();
});
