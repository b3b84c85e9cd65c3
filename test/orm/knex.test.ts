import knex, { type Knex } from 'knex';
import { describe, expect, it } from 'vitest';
import { knexExecutor } from '../../adapters/orm/knex.js';
import { Barrier, BarrierConfigError, type DialectName, mysqlDialect, postgresDialect, sqliteDialect } from '../../src/index.js';
import { describeExecutor, notesTableSql, type OrmHarness, tempSqliteFile } from './conformance.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const TABLE = 'orm_knex_barrier';
const NOTES = 'orm_knex_notes';
const DIALECTS = { mysql: mysqlDialect, postgres: postgresDialect, sqlite: sqliteDialect };

async function knexHarness(engine: DialectName, config: Knex.Config, cleanup = () => {}): Promise<OrmHarness<Knex.Transaction>> {
  const db = knex(config);
  // The barrier table from the dialect's own DDL, run through knex outside any transaction.
  for (const statement of DIALECTS[engine].createSchema(TABLE)) await db.raw(statement);
  await db.raw(notesTableSql(engine, NOTES));
  return {
    table: TABLE,
    notes: NOTES,
    transaction: (work) => db.transaction(work),
    repeatableRead: (work) => db.transaction(work, { isolationLevel: 'repeatable read' }),
    executor: knexExecutor,
    record: async (trx, gid, note) => {
      await trx(NOTES).insert({ gid, note });
    },
    query: async (sql, params) => {
      const result = await db.raw(sql, params as Knex.RawBinding[]);
      return engine === 'postgres' ? result.rows : engine === 'mysql' ? result[0] : result;
    },
    outsideTransaction: db,
    close: async () => {
      await db.destroy();
      cleanup();
    },
  };
}

describeExecutor('knex + better-sqlite3', 'sqlite', async () => {
  const { file, remove } = tempSqliteFile();
  return knexHarness('sqlite', { client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true }, remove);
});

describe.skipIf(!hasServer('mysql'))('knex + mysql2', () => {
  describeExecutor('knex + mysql2', 'mysql', () => knexHarness('mysql', { client: 'mysql2', connection: MYSQL_URL }));
});

describe.skipIf(!hasServer('postgres'))('knex + pg', () => {
  describeExecutor('knex + pg', 'postgres', () => knexHarness('postgres', { client: 'pg', connection: POSTGRES_URL }));

  it('needs { dialect } for a client it does not know, and then works through it', async () => {
    // knex's CockroachDB client speaks the pg protocol; txbarrier does not assume its engine.
    const db = knex({ client: 'cockroachdb', connection: POSTGRES_URL });
    try {
      for (const statement of postgresDialect.createSchema(TABLE)) await db.raw(statement);
      const gid = `orm-${crypto.randomUUID()}`;
      const action = () => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });
      await db.transaction(async (trx) => {
        expect(() => knexExecutor(trx)).toThrow(BarrierConfigError);
        expect(() => knexExecutor(trx)).toThrow(/"cockroachdb".*dialect/);
      });
      const applied = await db.transaction((trx) => action().within(knexExecutor(trx, { table: TABLE, dialect: 'postgres' }), () => 'ok'));
      expect(applied).toEqual({ outcome: 'applied', value: 'ok' });
      const repeated = await db.transaction((trx) => action().within(knexExecutor(trx, { table: TABLE, dialect: 'postgres' }), () => 'ok'));
      expect(repeated).toEqual({ outcome: 'duplicate' });
    } finally {
      await db.destroy();
    }
  });
});
