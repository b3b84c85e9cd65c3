import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IsolationLevel, mysqlExecutor, mysqlStore } from '../../adapters/stores/mysql.js';
import { Barrier, BarrierConfigError, BarrierOngoing } from '../../src/index.js';
import { describeConformance } from '../barrier/conformance.js';
import { hasServer } from '../support/servers.js';
import { createMysqlNotes, type MysqlConnection, type MysqlPool, mysqlHarness, mysqlNextConnection, mysqlNotes, mysqlPool } from '../support/server-harness.js';
import type { PoolConnection } from 'mysql2/promise';

/** DTM's own MySQL DDL (dtm-labs/dtm sqls/dtmcli.barrier.mysql.sql), in another database. */
const dtmDdl = (database: string) => `create table if not exists ${database}.barrier(
  id bigint(22) PRIMARY KEY AUTO_INCREMENT,
  trans_type varchar(45) default '',
  gid varchar(128) default '',
  branch_id varchar(128) default '',
  op varchar(45) default '',
  barrier_id varchar(45) default '',
  reason varchar(45) default '' comment 'the branch type who insert this record',
  create_time datetime DEFAULT now(),
  update_time datetime DEFAULT now(),
  key(create_time),
  key(update_time),
  UNIQUE key(gid, branch_id, op, barrier_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`;

describe.skipIf(!hasServer('mysql'))('mysql', () => {
  describeConformance('mysql', () => mysqlHarness({ table: 'h3_mysql.barrier', notes: 'h3_mysql.notes' }));

  // MySQL servers have no INSERT … RETURNING; there is none here, so MariaDB plays one.
  describeConformance('mysql without RETURNING (as on MySQL servers)', () =>
    mysqlHarness({ table: 'h3_mysql.barrier', notes: 'h3_mysql.notes', returning: false }),
  );

  describeConformance('mysql on DTM’s own table layout', async () => {
    const pool = mysqlPool({ connectionLimit: 1 });
    await pool.query('CREATE DATABASE IF NOT EXISTS h3_dtm');
    await pool.query('DROP TABLE IF EXISTS h3_dtm.barrier');
    await pool.query(dtmDdl('h3_dtm'));
    await pool.end();
    return mysqlHarness({ table: 'h3_dtm.barrier', notes: 'h3_dtm.notes' });
  });

  describe('mysql adapter', () => {
    const NOTES = 'h3_mysql.adapter_notes';
    const TABLE = 'h3_mysql.barrier';
    let pool: MysqlPool;
    beforeAll(async () => {
      pool = mysqlPool();
      await mysqlStore(pool, { table: TABLE }).ensureSchema();
      await createMysqlNotes(pool, NOTES);
    });
    afterAll(() => pool?.end());

    const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });
    const record = (tx: Pick<PoolConnection, 'query'>, gid: string, note: string) =>
      tx.query('INSERT INTO h3_mysql.adapter_notes (gid, note) VALUES (?, ?)', [gid, note]);
    const threadId = async (tx: PoolConnection) => Number(((await tx.query('SELECT CONNECTION_ID() AS id'))[0] as { id: number }[])[0]!.id);
    const inTransaction = async (tx: PoolConnection) => Number(((await tx.query('SELECT @@in_transaction AS t'))[0] as { t: number }[])[0]!.t);

    it('uses DTM’s table name by default', () => {
      expect(mysqlStore(pool).table).toBe('dtm_barrier.barrier');
      expect(mysqlExecutor(pool).table).toBe('dtm_barrier.barrier');
    });

    it('creates the database and a DTM-compatible table, idempotently', async () => {
      const database = `h3_schema_${randomUUID().slice(0, 8)}`;
      const store = mysqlStore(pool, { table: `${database}.barrier` });
      try {
        await store.ensureSchema();
        await store.ensureSchema();
        const [columns] = await pool.query(
          'SELECT column_name AS c FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position',
          [database, 'barrier'],
        );
        expect((columns as { c: string }[]).map((r) => r.c)).toEqual([
          'id', 'trans_type', 'gid', 'branch_id', 'op', 'barrier_id', 'reason', 'create_time', 'update_time',
        ]);
        const [unique] = await pool.query(
          "SELECT column_name AS c FROM information_schema.statistics WHERE table_schema = ? AND table_name = 'barrier' AND non_unique = 0 AND index_name <> 'PRIMARY' ORDER BY seq_in_index",
          [database],
        );
        expect((unique as { c: string }[]).map((r) => r.c)).toEqual(['gid', 'branch_id', 'op', 'barrier_id']);
        expect((await action(randomUUID()).call(store, () => 'ok')).outcome).toBe('applied');
      } finally {
        await pool.query(`DROP DATABASE IF EXISTS ${database}`);
      }
    });

    it('leaves an existing DTM table as it was', async () => {
      const database = `h3_schema_${randomUUID().slice(0, 8)}`;
      const columns = async () => {
        const [rows] = await pool.query('SHOW CREATE TABLE ' + database + '.barrier');
        return rows;
      };
      try {
        await pool.query(`CREATE DATABASE ${database}`);
        await pool.query(dtmDdl(database));
        const before = await columns();
        await mysqlStore(pool, { table: `${database}.barrier` }).ensureSchema();
        expect(await columns()).toEqual(before);
      } finally {
        await pool.query(`DROP DATABASE IF EXISTS ${database}`);
      }
    });

    it('refuses an unknown isolation level when the store is made', () => {
      for (const level of ['snapshot', 'READ COMMITTED; DROP TABLE x', '', 'read uncommitted']) {
        expect(() => mysqlStore(pool, { isolationLevel: level as IsolationLevel }), level).toThrow(BarrierConfigError);
      }
    });

    it('runs each transaction at the chosen isolation level and leaves the session as it was', async () => {
      const single = mysqlPool({ connectionLimit: 1 });
      try {
        /** Whether a read inside the transaction sees a row another session committed after the first read. */
        const seesLaterCommit = async (isolationLevel?: IsolationLevel) => {
          const gid = randomUUID();
          const result = await action(gid).call(mysqlStore(single, { table: TABLE, isolationLevel }), async (tx) => {
            const count = async () => {
              const [rows] = await tx.query('SELECT COUNT(*) AS n FROM h3_mysql.adapter_notes WHERE gid = ?', [gid]);
              return Number((rows as { n: number }[])[0]!.n);
            };
            const first = await count();
            await record(pool, gid, 'committed by another session');
            return (await count()) !== first;
          });
          if (result.outcome !== 'applied') throw new Error(result.outcome);
          return result.value;
        };
        const before = await seesLaterCommit();
        expect(await seesLaterCommit('read committed')).toBe(true);
        expect(await seesLaterCommit('repeatable read')).toBe(false);
        expect(await seesLaterCommit()).toBe(before);
      } finally {
        await single.end();
      }
    });

    it('rolls back and reuses the connection when business code throws', async () => {
      const single = mysqlPool({ connectionLimit: 1 });
      try {
        const store = mysqlStore(single, { table: TABLE });
        const before = await mysqlNextConnection(single);
        const gid = randomUUID();
        const boom = new Error('boom');
        await expect(
          action(gid).call(store, async (tx) => {
            await record(tx, gid, 'half');
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await mysqlNextConnection(single)).toEqual({ threadId: before.threadId, inTransaction: 0 });
        expect(await mysqlNotes(pool, NOTES, gid)).toEqual([]);
      } finally {
        await single.end();
      }
    });

    it('destroys a connection lost mid-transaction; the business error still surfaces unchanged', async () => {
      const single = mysqlPool({ connectionLimit: 1 });
      try {
        const store = mysqlStore(single, { table: TABLE });
        const gid = randomUUID();
        const boom = new Error('boom after the connection died');
        let killed = 0;
        await expect(
          action(gid).call(store, async (tx) => {
            await record(tx, gid, 'lost');
            killed = await threadId(tx);
            await pool.query(`KILL ${killed}`);
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect((await mysqlNextConnection(single)).threadId).not.toBe(killed);
        expect(await mysqlNotes(pool, NOTES, gid)).toEqual([]);
      } finally {
        await single.end();
      }
    });

    it('fails the call when COMMIT cannot be sent, commits nothing, and the retry applies', async () => {
      const single = mysqlPool({ connectionLimit: 1 });
      try {
        const store = mysqlStore(single, { table: TABLE });
        const gid = randomUUID();
        let killed = 0;
        const lost = await action(gid)
          .call(store, async (tx) => {
            await record(tx, gid, 'lost');
            killed = await threadId(tx);
            await pool.query(`KILL ${killed}`);
          })
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        expect(lost).toBeInstanceOf(Error);
        expect(lost).not.toBeInstanceOf(BarrierOngoing);
        expect((await mysqlNextConnection(single)).threadId).not.toBe(killed);
        const retry = await action(gid).call(store, (tx) => record(tx, gid, 'retry'));
        expect(retry.outcome).toBe('applied');
        expect(await mysqlNotes(pool, NOTES, gid)).toEqual(['retry']);
      } finally {
        await single.end();
      }
    });

    it('guards work inside a transaction the caller opened, and never commits it', async () => {
      const gid = randomUUID();
      const inUserTransaction = async (end: 'COMMIT' | 'ROLLBACK', note: string) => {
        const connection: MysqlConnection = await pool.getConnection();
        try {
          await connection.query('START TRANSACTION');
          const result = await action(gid).within(mysqlExecutor(connection, { table: TABLE }), (tx) => record(tx, gid, note));
          expect(await inTransaction(connection)).toBe(1);
          await connection.query(end);
          return result.outcome;
        } finally {
          connection.release();
        }
      };
      expect(await inUserTransaction('ROLLBACK', 'rolled back')).toBe('applied');
      expect(await inUserTransaction('COMMIT', 'committed')).toBe('applied');
      expect(await inUserTransaction('COMMIT', 'repeat')).toBe('duplicate');
      expect(await mysqlNotes(pool, NOTES, gid)).toEqual(['committed']);
      expect(() => mysqlExecutor(pool, { table: 'not a table' })).toThrow(BarrierConfigError);
    });

    it('refuses, in mysqlExecutor, a connection left in autocommit before the business work runs', async () => {
      const connection = await pool.getConnection();
      let ran = false;
      try {
        const outside = action(randomUUID()).within(mysqlExecutor(connection, { table: TABLE }), () => {
          ran = true;
        });
        await expect(outside).rejects.toThrow(/not in a transaction/);
        expect(ran).toBe(false);
      } finally {
        connection.release();
      }
    });
  });

  describe('mysql keys, clocks and pool options', () => {
    const TABLE = 'h3_mysql.barrier_keys';
    let pool: MysqlPool;
    beforeAll(async () => {
      pool = mysqlPool();
      // A fresh table: the collation under test is set when the table is created.
      await pool.query(`DROP TABLE IF EXISTS ${TABLE}`);
      await mysqlStore(pool, { table: TABLE }).ensureSchema();
    });
    afterAll(() => pool?.end());

    it('compares gids byte for byte: case and accents make different keys', async () => {
      const store = mysqlStore(pool, { table: TABLE });
      const base = `Order-${randomUUID()}`;
      const gids = [base, base.toLowerCase(), base.replace('O', 'Ö'), base.replace('O', 'O\u0301')];
      const outcomes = [];
      for (const gid of gids) outcomes.push((await Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' }).call(store, () => gid)).outcome);
      expect(outcomes).toEqual(['applied', 'applied', 'applied', 'applied']);
    });

    it('reads rows by name even when the pool returns rows as arrays', async () => {
      const arrays = mysqlPool({ rowsAsArray: true, connectionLimit: 2 });
      try {
        const store = mysqlStore(arrays, { table: TABLE });
        const gid = randomUUID();
        const saga = (op: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
        expect((await saga('action').call(store, () => 1)).outcome).toBe('applied');
        expect((await saga('action').call(store, () => 1)).outcome).toBe('duplicate');
        expect(await Barrier.forMessage(randomUUID()).queryPrepared(store)).toBe('rolledback');
      } finally {
        await arrays.end();
      }
    });

    it('ages rows by UTC, whatever time zone the writing and the pruning sessions use', async () => {
      const writer = mysqlPool({ connectionLimit: 1 });
      const pruner = mysqlPool({ connectionLimit: 1 });
      const table = 'h3_mysql.barrier_clock';
      try {
        await pool.query(`DROP TABLE IF EXISTS ${table}`);
        await mysqlStore(pool, { table }).ensureSchema();
        writer.on('connection', (c) => c.query("SET time_zone = '+00:00'"));
        pruner.on('connection', (c) => c.query("SET time_zone = '+10:00'"));
        const gid = randomUUID();
        await Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' }).call(mysqlStore(writer, { table }), () => 1);
        // Ten hours apart on the wall clock, seconds apart in fact: a 5 h retention keeps the row.
        expect(await mysqlStore(pruner, { table }).prune({ olderThan: '5h', force: true })).toBe(0);
        // Prune keeps rows 12 h past the retention (a foreign writer's clock may be that far west): 6 h is not enough.
        await pool.query(`UPDATE ${table} SET create_time = create_time - INTERVAL 6 HOUR WHERE gid = ?`, [gid]);
        expect(await mysqlStore(pruner, { table }).prune({ olderThan: '5h', force: true })).toBe(0);
        await pool.query(`UPDATE ${table} SET create_time = create_time - INTERVAL 12 HOUR WHERE gid = ?`, [gid]);
        expect(await mysqlStore(pruner, { table }).prune({ olderThan: '5h', force: true })).toBe(1);
      } finally {
        await writer.end();
        await pruner.end();
      }
    });

    it("never prunes early a row DTM's clients wrote with now() in a zone west of UTC", async () => {
      const table = 'h3_mysql.barrier_dtm_clock';
      const dtmClient = mysqlPool({ connectionLimit: 1 });
      try {
        await pool.query(`DROP TABLE IF EXISTS ${table}`);
        await mysqlStore(pool, { table }).ensureSchema();
        // DTM's Go client at UTC-11 leaves create_time to the column default, now() in its session's zone.
        dtmClient.on('connection', (c) => c.query("SET time_zone = '-11:00'"));
        const gid = randomUUID();
        await dtmClient.query(`INSERT INTO ${table} (trans_type, gid, branch_id, op, barrier_id, reason, create_time) VALUES ('saga', ?, '01', 'compensate', '01', 'compensate', now())`, [gid]);
        // Seconds old, though its wall clock reads 11 h behind UTC: an hour's retention keeps it.
        expect(await mysqlStore(pool, { table }).prune({ olderThan: '1h', force: true })).toBe(0);
        const [rows] = await pool.query(`SELECT gid FROM ${table} WHERE gid = ?`, [gid]);
        expect(rows).toHaveLength(1);
      } finally {
        await dtmClient.end();
      }
    });
  });
});
