import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, type Dialect, mysqlDialect, postgresDialect, sqliteDialect } from '../../src/index.js';
import { hasServer } from '../support/servers.js';
import { mysqlPool, postgresPool } from '../support/server-harness.js';

/** The DDL files for DBAs must say exactly what `ensureSchema()` runs for each engine's default table. */
const FILES: [string, Dialect, string][] = [
  ['mysql', mysqlDialect, 'dtm_barrier.barrier'],
  ['postgres', postgresDialect, 'dtm_barrier.barrier'],
  ['sqlite', sqliteDialect, 'barrier'],
];

const read = (engine: string) => readFileSync(new URL(`../../sql/${engine}.sql`, import.meta.url), 'utf8');

/** The statements of a file, without its leading comment. */
const statementsOf = (text: string) =>
  text
    .replace(/^(--.*\n)+\n/, '')
    .split(/;\n(?:\n|$)/)
    .filter((statement) => statement.length > 0);

describe('sql/*.sql', () => {
  it.each(FILES)('sql/%s.sql holds the dialect’s DDL for %s', (engine, dialect, table) => {
    const text = read(engine);
    expect(text).toMatch(/^-- /);
    expect(statementsOf(text)).toEqual(dialect.createSchema(table));
  });

  it('sql/sqlite.sql makes a table the SQLite store works on', async () => {
    const db = new Database(':memory:');
    try {
      db.exec(read('sqlite'));
      const gid = randomUUID();
      const outcome = await Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' }).call(sqliteStore(db), () => 'ok');
      expect(outcome).toEqual({ outcome: 'applied', value: 'ok' });
      expect(db.prepare('SELECT reason FROM barrier WHERE gid = ?').all(gid)).toEqual([{ reason: 'action' }]);
    } finally {
      db.close();
    }
  });

  // Run under another schema name, so as not to touch the shared default table.
  const renamed = (engine: string, schema: string) => statementsOf(read(engine)).map((s) => s.replaceAll('dtm_barrier', schema));

  it.skipIf(!hasServer('mysql'))('sql/mysql.sql runs on the server, twice', async () => {
    const pool = mysqlPool({ connectionLimit: 1 });
    const schema = `h3_sqlfile_${randomUUID().slice(0, 8)}`;
    try {
      for (let i = 0; i < 2; i++) for (const statement of renamed('mysql', schema)) await pool.query(statement);
      const [rows] = await pool.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?', [
        schema,
        'barrier',
      ]);
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      await pool.query(`DROP DATABASE IF EXISTS ${schema}`);
      await pool.end();
    }
  });

  it.skipIf(!hasServer('postgres'))('sql/postgres.sql runs on the server, twice', async () => {
    const pool = postgresPool({ max: 1 });
    const schema = `h3_sqlfile_${randomUUID().slice(0, 8)}`;
    try {
      for (let i = 0; i < 2; i++) for (const statement of renamed('postgres', schema)) await pool.query(statement);
      const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS exists', [`${schema}.barrier`]);
      expect(rows).toEqual([{ exists: true }]);
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    }
  });
});
