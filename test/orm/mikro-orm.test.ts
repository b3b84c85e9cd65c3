import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { EntitySchema, IsolationLevel, MikroORM, type Opt, type Options } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';
import { MariaDbDriver } from '@mikro-orm/mariadb';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { describe, expect, it } from 'vitest';
import { mikroOrmExecutor } from '../../adapters/orm/mikro-orm.js';
import { BarrierConfigError, type DialectName, mysqlDialect, postgresDialect, sqliteDialect } from '../../src/index.js';
import { describeExecutor, notesTableSql, type OrmHarness, tempSqliteFile } from './conformance.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const TABLE = 'orm_mikro_barrier';
const NOTES = 'orm_mikro_notes';
const DIALECTS = { mysql: mysqlDialect, postgres: postgresDialect, sqlite: sqliteDialect };

const Note = new EntitySchema<{ seq: Opt<number>; gid: string; note: string }>({
  name: 'OrmMikroNote',
  tableName: NOTES,
  properties: { seq: { type: 'number', primary: true, autoincrement: true }, gid: { type: 'string' }, note: { type: 'string' } },
});

async function mikroHarness(engine: DialectName, options: Options, cleanup = () => {}): Promise<OrmHarness<EntityManager>> {
  const orm = await MikroORM.init({ ...options, entities: [Note] });
  const em = () => orm.em.fork() as EntityManager;
  // The barrier table from the dialect's own DDL, run through MikroORM outside any transaction.
  for (const statement of DIALECTS[engine].createSchema(TABLE)) await em().execute(statement, [], 'run');
  await em().execute(notesTableSql(engine, NOTES), [], 'run');
  return {
    table: TABLE,
    notes: NOTES,
    transaction: (work) => em().transactional(work),
    repeatableRead: (work) => em().transactional(work, { isolationLevel: IsolationLevel.REPEATABLE_READ }),
    executor: mikroOrmExecutor,
    record: async (tx, gid, note) => {
      await tx.insert(Note, { gid, note });
    },
    query: (sql, params) => em().execute(sql, params, 'all'),
    outsideTransaction: em(),
    close: async () => {
      await orm.close();
      cleanup();
    },
  };
}

describeExecutor('MikroORM + better-sqlite', 'sqlite', async () => {
  const { file, remove } = tempSqliteFile();
  return mikroHarness('sqlite', { driver: BetterSqliteDriver, dbName: file }, remove);
});

describe.skipIf(!hasServer('mysql'))('MikroORM + mariadb', () => {
  describeExecutor('MikroORM + mariadb', 'mysql', () => mikroHarness('mysql', { driver: MariaDbDriver, clientUrl: MYSQL_URL, pool: { min: 0, max: 4 } }));
});

describe.skipIf(!hasServer('postgres'))('MikroORM + postgresql', () => {
  describeExecutor('MikroORM + postgresql', 'postgres', () => mikroHarness('postgres', { driver: PostgreSqlDriver, clientUrl: POSTGRES_URL, pool: { min: 0, max: 4 } }));
});

it('MikroORM: a driver it does not know needs { dialect }', () => {
  class LibSqlDriver {}
  const em = { isInTransaction: () => true, getDriver: () => new LibSqlDriver(), execute: async () => [] };
  expect(() => mikroOrmExecutor(em)).toThrow(BarrierConfigError);
  expect(() => mikroOrmExecutor(em)).toThrow(/"LibSqlDriver".*dialect/);
  expect(mikroOrmExecutor(em, { dialect: 'sqlite' }).dialect.name).toBe('sqlite');
});
