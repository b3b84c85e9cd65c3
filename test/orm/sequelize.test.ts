import { DataTypes, QueryTypes, Sequelize, Transaction } from 'sequelize';
import { describe, expect, it } from 'vitest';
import { sequelizeExecutor } from '../../adapters/orm/sequelize.js';
import { Barrier, BarrierConfigError, mysqlDialect, postgresDialect } from '../../src/index.js';
import { describeExecutor, notesTableSql, type OrmHarness } from './conformance.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const TABLE = 'orm_sequelize_barrier';
const NOTES = 'orm_sequelize_notes';
const DIALECTS = { mysql: mysqlDialect, postgres: postgresDialect };

async function sequelizeHarness(engine: 'mysql' | 'postgres', url: string): Promise<OrmHarness<Transaction>> {
  const sequelize = new Sequelize(url, { logging: false, pool: { max: 4 } });
  const Note = sequelize.define(
    'OrmNote',
    { seq: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true }, gid: DataTypes.STRING, note: DataTypes.STRING },
    { tableName: NOTES, timestamps: false },
  );
  // The barrier table from the dialect's own DDL, run through Sequelize outside any transaction.
  for (const statement of DIALECTS[engine].createSchema(TABLE)) await sequelize.query(statement);
  await sequelize.query(notesTableSql(engine, NOTES));
  return {
    table: TABLE,
    notes: NOTES,
    transaction: (work) => sequelize.transaction(work),
    repeatableRead: (work) => sequelize.transaction({ isolationLevel: Transaction.ISOLATION_LEVELS.REPEATABLE_READ }, work),
    executor: sequelizeExecutor,
    record: async (transaction, gid, note) => {
      await Note.create({ gid, note }, { transaction });
    },
    query: (sql, params) => sequelize.query(sql, { replacements: params, type: QueryTypes.SELECT }),
    outsideTransaction: sequelize,
    close: () => sequelize.close(),
  };
}

describe.skipIf(!hasServer('mysql'))('Sequelize + mysql2', () => {
  describeExecutor('Sequelize + mysql2', 'mysql', () => sequelizeHarness('mysql', MYSQL_URL));
});

describe.skipIf(!hasServer('postgres'))('Sequelize + pg', () => {
  describeExecutor('Sequelize + pg', 'postgres', () => sequelizeHarness('postgres', POSTGRES_URL));

  it('works in an unmanaged transaction, and refuses it once committed', async () => {
    const sequelize = new Sequelize(POSTGRES_URL, { logging: false, pool: { max: 2 } });
    try {
      const gid = `orm-${crypto.randomUUID()}`;
      const t = await sequelize.transaction();
      const result = await Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'compensate' }).within(
        sequelizeExecutor(t, { table: TABLE }),
        () => 'unused',
      );
      expect(result).toEqual({ outcome: 'null-compensation' });
      await t.commit();
      expect(() => sequelizeExecutor(t, { table: TABLE })).toThrow(BarrierConfigError);
      const rows = await sequelize.query(`SELECT op FROM ${TABLE} WHERE gid = $1 ORDER BY op`, { bind: [gid], type: QueryTypes.SELECT });
      expect(rows).toEqual([{ op: 'action' }, { op: 'compensate' }]);
    } finally {
      await sequelize.close();
    }
  });
});

it('Sequelize: a dialect whose results it does not read needs { dialect }', () => {
  // sqlite3 is not installed: the dialect module is never loaded, as the transaction never starts.
  const sequelize = new Sequelize({ dialect: 'sqlite', dialectModule: {}, logging: false });
  const transaction = new Transaction(sequelize, {});
  expect(() => sequelizeExecutor(transaction)).toThrow(BarrierConfigError);
  expect(() => sequelizeExecutor(transaction)).toThrow(/"sqlite".*dialect/);
});
