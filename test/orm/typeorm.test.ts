import { DataSource, type DataSourceOptions, EntityManager, EntitySchema } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { typeormExecutor } from '../../adapters/orm/typeorm.js';
import { Barrier, BarrierConfigError, type DialectName, mysqlDialect, postgresDialect, sqliteDialect } from '../../src/index.js';
import { describeExecutor, notesTableSql, numbered, type OrmHarness, tempSqliteFile } from './conformance.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const TABLE = 'orm_typeorm_barrier';
const NOTES = 'orm_typeorm_notes';
const DIALECTS = { mysql: mysqlDialect, postgres: postgresDialect, sqlite: sqliteDialect };

const Note = new EntitySchema<{ seq: number; gid: string; note: string }>({
  name: 'OrmNote',
  tableName: NOTES,
  columns: { seq: { type: Number, primary: true, generated: true }, gid: { type: String }, note: { type: String } },
});

async function dataSource(engine: DialectName, options: DataSourceOptions): Promise<DataSource> {
  const ds = await new DataSource({ ...options, entities: [Note] }).initialize();
  // The barrier table from the dialect's own DDL, run through TypeORM outside any transaction.
  for (const statement of DIALECTS[engine].createSchema(TABLE)) await ds.query(statement);
  await ds.query(notesTableSql(engine, NOTES));
  return ds;
}

async function typeormHarness(engine: DialectName, options: DataSourceOptions, cleanup = () => {}): Promise<OrmHarness<EntityManager>> {
  const ds = await dataSource(engine, options);
  // On SQLite TypeORM runs every query of a data source on one shared connection and does not
  // queue transactions: a second concurrent one fails with "cannot start a transaction within a
  // transaction" (typeorm#1884). Applications queue them themselves, as here.
  let tail: Promise<unknown> = Promise.resolve();
  const queued = <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
  return {
    table: TABLE,
    notes: NOTES,
    transaction: (work) => (engine === 'sqlite' ? queued(() => ds.transaction(work)) : ds.transaction(work)),
    repeatableRead: (work) => ds.transaction('REPEATABLE READ', work),
    executor: typeormExecutor,
    record: async (manager, gid, note) => {
      await manager.insert(Note, { gid, note });
    },
    query: (sql, params) => ds.query(engine === 'postgres' ? numbered(sql) : sql, params),
    outsideTransaction: ds.manager,
    close: async () => {
      await ds.destroy();
      cleanup();
    },
  };
}

describeExecutor('TypeORM + better-sqlite3', 'sqlite', async () => {
  const { file, remove } = tempSqliteFile();
  return typeormHarness('sqlite', { type: 'better-sqlite3', database: file }, remove);
});

describe.skipIf(!hasServer('mysql'))('TypeORM + mysql2', () => {
  describeExecutor('TypeORM + mysql2', 'mysql', () => typeormHarness('mysql', { type: 'mysql', url: MYSQL_URL, poolSize: 4 }));
});

describe.skipIf(!hasServer('postgres'))('TypeORM + pg', () => {
  describeExecutor('TypeORM + pg', 'postgres', () => typeormHarness('postgres', { type: 'postgres', url: POSTGRES_URL, poolSize: 4 }));

  it('works on a QueryRunner the caller started, and refuses one that has not started', async () => {
    const ds = await dataSource('postgres', { type: 'postgres', url: POSTGRES_URL, poolSize: 2 });
    const runner = ds.createQueryRunner();
    try {
      expect(() => typeormExecutor(runner)).toThrow(BarrierConfigError);
      await runner.startTransaction();
      const gid = `orm-${crypto.randomUUID()}`;
      const result = await Barrier.from({ transType: 'tcc', gid, branchId: '01', op: 'cancel' }).within(
        typeormExecutor(runner, { table: TABLE }),
        () => 'unused',
      );
      expect(result).toEqual({ outcome: 'null-compensation' });
      await runner.commitTransaction();
      const rows = await ds.query(`SELECT op FROM ${TABLE} WHERE gid = $1 ORDER BY op`, [gid]);
      expect(rows).toEqual([{ op: 'cancel' }, { op: 'try' }]);
    } finally {
      await runner.release();
      await ds.destroy();
    }
  });
});

it('TypeORM: a data source type it does not know needs { dialect }', () => {
  // Never initialised: the data source's options are all the detection looks at.
  const ds = new DataSource({ type: 'cockroachdb', url: POSTGRES_URL, timeTravelQueries: false });
  const manager = new EntityManager(ds, ds.createQueryRunner());
  expect(() => typeormExecutor(manager)).toThrow(BarrierConfigError);
  expect(() => typeormExecutor(manager)).toThrow(/"cockroachdb".*dialect/);
});
