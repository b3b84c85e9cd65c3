import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import type { DialectName } from '../../src/index.js';
import { createOutbox, DEFAULT_OUTBOX_TABLE } from '../../src/messaging/outbox/index.js';
import { outboxSql } from '../../src/messaging/outbox/sql.js';
import { mysqlPool, postgresPool } from '../support/server-harness.js';
import { hasServer } from '../support/servers.js';

/** The outbox DDL files for DBAs say exactly what `outbox.ensureSchema()` runs for the default table. */
const read = (engine: DialectName) => readFileSync(new URL(`../../sql/outbox-${engine}.sql`, import.meta.url), 'utf8');
const statementsOf = (text: string) =>
  text
    .replace(/^(--.*\n)+\n/, '')
    .split(/;\n(?:\n|$)/)
    .filter((statement) => statement.length > 0);
// Under another name, so as not to touch a shared default table.
const renamed = (engine: DialectName, table: string) => statementsOf(read(engine)).map((s) => s.replaceAll(DEFAULT_OUTBOX_TABLE, table));

describe('sql/outbox-*.sql', () => {
  it.each(['mysql', 'postgres', 'sqlite'] as const)('sql/outbox-%s.sql holds the code’s DDL', (engine) => {
    const text = read(engine);
    expect(text).toMatch(/^-- /);
    expect(statementsOf(text)).toEqual(outboxSql(engine, DEFAULT_OUTBOX_TABLE).createSchema());
  });

  it('sql/outbox-sqlite.sql makes a table the outbox works on', async () => {
    const db = new Database(':memory:');
    try {
      db.exec(read('sqlite'));
      const outbox = createOutbox(sqliteStore(db));
      const id = await outbox.store.transaction(({ tx }) => outbox.enqueue(tx, { topic: 't', payload: 'p' }));
      expect((await outbox.pending()).map((m) => m.id)).toEqual([id]);
    } finally {
      db.close();
    }
  });

  it.skipIf(!hasServer('mysql'))('sql/outbox-mysql.sql runs on the server, twice', async () => {
    const pool = mysqlPool({ connectionLimit: 1 });
    const table = `outbox_sqlfile_${randomUUID().slice(0, 8)}`;
    try {
      for (let i = 0; i < 2; i++) for (const statement of renamed('mysql', table)) await pool.query(statement);
      const [rows] = await pool.query('SELECT COUNT(*) AS n FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?', [table]);
      expect(Number((rows as { n: number }[])[0]!.n)).toBeGreaterThanOrEqual(4);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    }
  });

  it.skipIf(!hasServer('postgres'))('sql/outbox-postgres.sql runs on the server, twice', async () => {
    const pool = postgresPool({ max: 1 });
    const table = `outbox_sqlfile_${randomUUID().slice(0, 8)}`;
    try {
      for (let i = 0; i < 2; i++) for (const statement of renamed('postgres', table)) await pool.query(statement);
      const { rows } = await pool.query('SELECT COUNT(*)::int AS n FROM pg_indexes WHERE tablename = $1', [table]);
      expect(rows[0].n).toBe(4);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    }
  });
});
