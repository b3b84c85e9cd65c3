import Database from 'better-sqlite3';
import {
  CamelCasePlugin,
  CompiledQuery,
  DummyDriver,
  Kysely,
  MssqlAdapter,
  MssqlIntrospector,
  MssqlQueryCompiler,
  MysqlDialect,
  PostgresDialect,
  SqliteDialect,
  type Transaction,
} from 'kysely';
import { createPool } from 'mysql2';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { kyselyExecutor } from '../../adapters/orm/kysely.js';
import { Barrier, BarrierConfigError, type DialectName, mysqlDialect, postgresDialect, sqliteDialect } from '../../src/index.js';
import { describeExecutor, notesTableSql, numbered, type OrmHarness, tempSqliteFile } from './conformance.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const TABLE = 'orm_kysely_barrier';
const NOTES = 'orm_kysely_notes';
const DIALECTS = { mysql: mysqlDialect, postgres: postgresDialect, sqlite: sqliteDialect };

interface Schema {
  orm_kysely_notes: { seq?: number; gid: string; note: string };
}

async function kyselyHarness(engine: DialectName, db: Kysely<Schema>, cleanup = () => {}): Promise<OrmHarness<Transaction<Schema>>> {
  for (const statement of DIALECTS[engine].createSchema(TABLE)) await db.executeQuery(CompiledQuery.raw(statement));
  await db.executeQuery(CompiledQuery.raw(notesTableSql(engine, NOTES)));
  return {
    table: TABLE,
    notes: NOTES,
    transaction: (work) => db.transaction().execute(work),
    repeatableRead: (work) => db.transaction().setIsolationLevel('repeatable read').execute(work),
    executor: kyselyExecutor,
    record: async (trx, gid, note) => {
      await trx.insertInto('orm_kysely_notes').values({ gid, note }).execute();
    },
    query: async (text, params) =>
      (await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(engine === 'postgres' ? numbered(text) : text, params))).rows,
    outsideTransaction: db,
    close: async () => {
      await db.destroy();
      cleanup();
    },
  };
}

describeExecutor('Kysely + better-sqlite3', 'sqlite', async () => {
  const { file, remove } = tempSqliteFile();
  return kyselyHarness('sqlite', new Kysely<Schema>({ dialect: new SqliteDialect({ database: new Database(file) }) }), remove);
});

describe.skipIf(!hasServer('mysql'))('Kysely + mysql2', () => {
  describeExecutor('Kysely + mysql2', 'mysql', () =>
    kyselyHarness('mysql', new Kysely<Schema>({ dialect: new MysqlDialect({ pool: createPool({ uri: MYSQL_URL, connectionLimit: 4 }) }) })),
  );
});

describe.skipIf(!hasServer('postgres'))('Kysely + pg', () => {
  describeExecutor('Kysely + pg', 'postgres', () =>
    kyselyHarness(
      'postgres',
      new Kysely<Schema>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 4 }) }) }),
    ),
  );

  it('reads its rows through the plugins of the transaction (CamelCasePlugin)', async () => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }), plugins: [new CamelCasePlugin()] });
    try {
      const gid = `orm-${crypto.randomUUID()}`;
      const barrier = (op: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
      const deliver = (op: string) => db.transaction().execute((trx) => barrier(op).within(kyselyExecutor(trx, { table: TABLE }), () => op));
      expect(await deliver('compensate')).toEqual({ outcome: 'null-compensation' });
      // Only the suppressed forward op reads a row back: its reason must survive the plugin.
      expect(await deliver('action')).toEqual({ outcome: 'dangling' });
    } finally {
      await db.destroy();
    }
  });
});

it('Kysely: a dialect it does not recognise needs { dialect }', async () => {
  // Kysely's DummyDriver never connects: the adapter is all the detection looks at.
  const db = new Kysely<Schema>({
    dialect: {
      createAdapter: () => new MssqlAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (kysely) => new MssqlIntrospector(kysely),
      createQueryCompiler: () => new MssqlQueryCompiler(),
    },
  });
  expect(() => kyselyExecutor(db)).toThrow(BarrierConfigError);
  expect(() => kyselyExecutor(db)).toThrow(/"MssqlAdapter".*dialect/);
  await db.destroy();
});
