/** The conformance harness on a PGlite instance: a business table `notes` and the default barrier table. */
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { pgliteStore } from '../../adapters/stores/pglite.js';
import type { BarrierRowRead, Harness } from '../barrier/conformance.js';

/** Readies `pg` (a fresh in-memory instance unless given); `close` closes it. */
export async function pgliteHarness(pg = new PGlite()): Promise<Harness<Transaction>> {
  await pg.exec('CREATE TABLE IF NOT EXISTS notes (seq BIGSERIAL PRIMARY KEY, gid TEXT NOT NULL, note TEXT NOT NULL)');
  const store = pgliteStore(pg);
  await store.ensureSchema();
  return {
    store,
    makeStore: (options) => pgliteStore(pg, options as never),
    record: async (tx, gid, note) => {
      await tx.query('INSERT INTO notes (gid, note) VALUES ($1, $2)', [gid, note]);
    },
    notes: async (gid) => (await pg.query<{ note: string }>('SELECT note FROM notes WHERE gid = $1 ORDER BY seq', [gid])).rows.map((row) => row.note),
    barrierRows: async (gid) => (await pg.query<BarrierRowRead>(`SELECT * FROM ${store.table} WHERE gid = $1`, [gid])).rows,
    close: () => pg.close(),
  };
}
