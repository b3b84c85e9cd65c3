import Database from 'better-sqlite3';
import { eq, sql } from 'drizzle-orm';
import { drizzle as sqliteDrizzle } from 'drizzle-orm/better-sqlite3';
import { bigint, mysqlTable, varchar } from 'drizzle-orm/mysql-core';
import { drizzle as mysqlDrizzle } from 'drizzle-orm/mysql2';
import { drizzle as pgDrizzle } from 'drizzle-orm/node-postgres';
import { bigserial, pgTable, text } from 'drizzle-orm/pg-core';
import { integer, sqliteTable, text as sqliteText } from 'drizzle-orm/sqlite-core';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { drizzleExecutor } from '../../adapters/orm/drizzle.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, BarrierConfigError, mysqlDialect, postgresDialect } from '../../src/index.js';
import { describeExecutor, notesTableSql, numbered, type OrmHarness, tempSqliteFile } from './conformance.js';
import { hasServer } from '../support/servers.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const TABLE = 'orm_drizzle_barrier';
const NOTES = 'orm_drizzle_notes';

const pgNotes = pgTable(NOTES, {
  seq: bigserial('seq', { mode: 'number' }).primaryKey(),
  gid: text('gid').notNull(),
  note: text('note').notNull(),
});
const mysqlNotes = mysqlTable(NOTES, {
  seq: bigint('seq', { mode: 'number' }).primaryKey().autoincrement(),
  gid: varchar('gid', { length: 200 }).notNull(),
  note: varchar('note', { length: 64 }).notNull(),
});
const sqliteNotes = sqliteTable(NOTES, {
  seq: integer('seq').primaryKey({ autoIncrement: true }),
  gid: sqliteText('gid').notNull(),
  note: sqliteText('note').notNull(),
});

const pgDb = (pool: pg.Pool) => pgDrizzle(pool);
type PgTx = Parameters<Parameters<ReturnType<typeof pgDb>['transaction']>[0]>[0];
const mysqlDb = (pool: mysql.Pool) => mysqlDrizzle(pool);
type MysqlTx = Parameters<Parameters<ReturnType<typeof mysqlDb>['transaction']>[0]>[0];

describe.skipIf(!hasServer('postgres'))('Drizzle + node-postgres', () => {
  describeExecutor('Drizzle + node-postgres', 'postgres', async (): Promise<OrmHarness<PgTx>> => {
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
    const db = pgDb(pool);
    for (const statement of postgresDialect.createSchema(TABLE)) await db.execute(sql.raw(statement));
    await db.execute(sql.raw(notesTableSql('postgres', NOTES)));
    return {
      table: TABLE,
      notes: NOTES,
      transaction: (work) => db.transaction(work),
      repeatableRead: (work) => db.transaction(work, { isolationLevel: 'repeatable read' }),
      executor: drizzleExecutor,
      record: async (tx, gid, note) => {
        await tx.insert(pgNotes).values({ gid, note });
      },
      query: async (text, params) => (await pool.query(numbered(text), params)).rows,
      outsideTransaction: db,
      close: () => pool.end(),
    };
  });
});

describe.skipIf(!hasServer('mysql'))('Drizzle + mysql2', () => {
  describeExecutor('Drizzle + mysql2', 'mysql', async (): Promise<OrmHarness<MysqlTx>> => {
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
    const db = mysqlDb(pool);
    for (const statement of mysqlDialect.createSchema(TABLE)) await db.execute(sql.raw(statement));
    await db.execute(sql.raw(notesTableSql('mysql', NOTES)));
    return {
      table: TABLE,
      notes: NOTES,
      transaction: (work) => db.transaction(work),
      executor: drizzleExecutor,
      record: async (tx, gid, note) => {
        await tx.insert(mysqlNotes).values({ gid, note });
      },
      query: async (text, params) => (await pool.query(text, params))[0] as Record<string, unknown>[],
      outsideTransaction: db,
      close: () => pool.end(),
    };
  });
});

describe('Drizzle + better-sqlite3', () => {
  function open() {
    const { file, remove } = tempSqliteFile();
    const client = new Database(file);
    client.pragma('journal_mode = WAL');
    client.exec(notesTableSql('sqlite', NOTES));
    return { client, db: sqliteDrizzle({ client }), close: () => (client.close(), remove()) };
  }

  it('refuses its synchronous transactions with the way that works', () => {
    const { db, close } = open();
    try {
      db.transaction((tx) => {
        expect(() => drizzleExecutor(tx as never)).toThrow(BarrierConfigError);
        expect(() => drizzleExecutor(tx as never)).toThrow(/sqliteStore/);
      });
    } finally {
      close();
    }
  });

  it('guards Drizzle queries through sqliteStore on the same Database instead', async () => {
    const { client, db, close } = open();
    try {
      const store = sqliteStore(client, { table: TABLE });
      await store.ensureSchema();
      const gid = `orm-${crypto.randomUUID()}`;
      const barrier = (op: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
      const notes = () => db.select({ note: sqliteNotes.note }).from(sqliteNotes).where(eq(sqliteNotes.gid, gid)).all().map((r) => r.note);

      const boom = new Error('business broke');
      const failing = barrier('action').call(store, async () => {
        db.insert(sqliteNotes).values({ gid, note: 'half-done' }).run();
        await Promise.resolve();
        throw boom;
      });
      await expect(failing).rejects.toBe(boom);
      expect(notes()).toEqual([]);

      const apply = () =>
        barrier('action').call(store, async () => {
          await Promise.resolve();
          db.insert(sqliteNotes).values({ gid, note: 'action' }).run();
        });
      expect((await apply()).outcome).toBe('applied');
      expect((await apply()).outcome).toBe('duplicate');
      expect(notes()).toEqual(['action']);
    } finally {
      close();
    }
  });
});
