import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IsolationLevel, type PostgresQueryable, postgresExecutor, postgresStore } from '../../adapters/stores/postgres.js';
import { Barrier, BarrierConfigError, BarrierError, BarrierOngoing, BarrierTransactionAborted, type OutcomeEvent } from '../../src/index.js';
import { describeConformance } from '../barrier/conformance.js';
import { hasServer } from '../support/servers.js';
import { createPostgresNotes, type PostgresPool, postgresHarness, postgresNotes, postgresPool } from '../support/server-harness.js';

/** DTM's own PostgreSQL DDL (dtm-labs/dtm sqls/dtmcli.barrier.postgres.sql), in another schema. */
const dtmDdl = (schema: string) => [
  `create schema if not exists ${schema}`,
  `CREATE SEQUENCE if not EXISTS ${schema}.barrier_seq`,
  `create table if not exists ${schema}.barrier(
  id bigint NOT NULL DEFAULT NEXTVAL ('${schema}.barrier_seq'),
  trans_type varchar(45) default '',
  gid varchar(128) default '',
  branch_id varchar(128) default '',
  op varchar(45) default '',
  barrier_id varchar(45) default '',
  reason varchar(45) default '',
  create_time timestamp(0) with time zone DEFAULT NULL,
  update_time timestamp(0) with time zone DEFAULT NULL,
  PRIMARY KEY(id),
  CONSTRAINT uniq_barrier unique(gid, branch_id, op, barrier_id)
)`,
];

describe.skipIf(!hasServer('postgres'))('postgres', () => {
  describeConformance('postgres', () => postgresHarness({ table: 'h3_pg.barrier', notes: 'h3_pg.notes' }));

  describeConformance('postgres on DTM’s own table layout', async () => {
    const pool = postgresPool({ max: 1 });
    await pool.query('DROP TABLE IF EXISTS h3_dtm.barrier');
    for (const statement of dtmDdl('h3_dtm')) await pool.query(statement);
    await pool.end();
    return postgresHarness({ table: 'h3_dtm.barrier', notes: 'h3_dtm.notes' });
  });

  describe('postgres adapter', () => {
    const TABLE = 'h3_pg.barrier';
    const NOTES = 'h3_pg.adapter_notes';
    let pool: PostgresPool;
    beforeAll(async () => {
      pool = postgresPool();
      await postgresStore(pool, { table: TABLE }).ensureSchema();
      await createPostgresNotes(pool, NOTES);
    });
    afterAll(() => pool?.end());

    const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });
    const record = (tx: PostgresQueryable, gid: string, note: string) =>
      tx.query('INSERT INTO h3_pg.adapter_notes (gid, note) VALUES ($1, $2)', [gid, note]);
    const barrierRows = async (gid: string) => (await pool.query('SELECT * FROM h3_pg.barrier WHERE gid = $1', [gid])).rows;
    const backendPid = async (tx: PostgresQueryable) => Number((await tx.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    const columnsOf = async (schema: string) =>
      (
        await pool.query(
          `SELECT column_name, is_nullable, column_default FROM information_schema.columns
           WHERE table_schema = $1 AND table_name = 'barrier' ORDER BY ordinal_position`,
          [schema],
        )
      ).rows;
    /** The client a pool of one lends next: its backend, and whether it is inside a transaction. */
    const nextClient = async (p: PostgresPool) => {
      const client = await p.connect();
      try {
        const { rows } = await client.query("SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS idle");
        return { pid: Number(rows[0].pid), inTransaction: !rows[0].idle };
      } finally {
        client.release();
      }
    };

    it('uses DTM’s table name by default', () => {
      expect(postgresStore(pool).table).toBe('dtm_barrier.barrier');
      expect(postgresExecutor(pool).table).toBe('dtm_barrier.barrier');
    });

    it('creates the schema and the table keyed like DTM’s, idempotently, with timestamps filled', async () => {
      const schema = `h3_schema_${randomUUID().slice(0, 8)}`;
      const store = postgresStore(pool, { table: `${schema}.barrier` });
      try {
        await store.ensureSchema();
        await store.ensureSchema();
        expect((await columnsOf(schema)).map((c) => c.column_name)).toEqual([
          'trans_type', 'gid', 'branch_id', 'op', 'barrier_id', 'reason', 'create_time', 'update_time',
        ]);
        const { rows: key } = await pool.query(
          `SELECT c.conname, array_to_string(array_agg(a.attname ORDER BY k.ord), ',') AS columns
           FROM pg_constraint c CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
           WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u') GROUP BY c.conname`,
          [`${schema}.barrier`],
        );
        expect(key).toEqual([{ conname: 'uniq_barrier', columns: 'gid,branch_id,op,barrier_id' }]);
        const gid = randomUUID();
        expect((await action(gid).call(store, () => 'ok')).outcome).toBe('applied');
        const { rows } = await pool.query(`SELECT create_time, update_time FROM ${schema}.barrier WHERE gid = $1`, [gid]);
        expect(rows[0].create_time).toBeInstanceOf(Date);
        expect(rows[0].update_time).toBeInstanceOf(Date);
      } finally {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }
    });

    it('creates the schema from several stores at once (replicas starting together)', async () => {
      const schema = `h3_schema_${randomUUID().slice(0, 8)}`;
      try {
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, () => postgresStore(pool, { table: `${schema}.barrier` }).ensureSchema()),
        );
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
        const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS exists', [`${schema}.barrier`]);
        expect(rows).toEqual([{ exists: true }]);
      } finally {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }
    });

    it('works on an existing DTM table, changing no column, and fills its NULL-default timestamps', async () => {
      const schema = `h3_schema_${randomUUID().slice(0, 8)}`;
      try {
        for (const statement of dtmDdl(schema)) await pool.query(statement);
        const before = await columnsOf(schema);
        const store = postgresStore(pool, { table: `${schema}.barrier` });
        await store.ensureSchema();
        expect(await columnsOf(schema)).toEqual(before);
        const gid = randomUUID();
        expect((await Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'compensate' }).call(store, () => 'x')).outcome).toBe(
          'null-compensation',
        );
        const { rows } = await pool.query(`SELECT id, op, create_time, update_time FROM ${schema}.barrier WHERE gid = $1 ORDER BY op`, [gid]);
        expect(rows.map((r) => r.op)).toEqual(['action', 'compensate']);
        for (const row of rows) {
          expect(row.id).not.toBeNull();
          expect(row.create_time).toBeInstanceOf(Date);
          expect(row.update_time).toBeInstanceOf(Date);
        }
      } finally {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      }
    });

    it('refuses an unknown isolation level when the store is made', () => {
      for (const level of ['snapshot', 'READ COMMITTED; DROP TABLE x', '', 'read uncommitted']) {
        expect(() => postgresStore(pool, { isolationLevel: level as IsolationLevel }), level).toThrow(BarrierConfigError);
      }
    });

    it('runs each transaction at the chosen isolation level', async () => {
      const levelInside = async (isolationLevel?: IsolationLevel) => {
        const result = await action(randomUUID()).call(postgresStore(pool, { table: TABLE, isolationLevel }), async (tx) =>
          String((await tx.query('SHOW transaction_isolation')).rows[0]!.transaction_isolation),
        );
        if (result.outcome !== 'applied') throw new Error(result.outcome);
        return result.value;
      };
      const before = await levelInside();
      expect(await levelInside('repeatable read')).toBe('repeatable read');
      expect(await levelInside('serializable')).toBe('serializable');
      expect(await levelInside('read committed')).toBe('read committed');
      expect(await levelInside()).toBe(before);
    });

    it('refuses to report applied when business code swallowed a failed statement: nothing commits', async () => {
      const single = postgresPool({ max: 1 });
      try {
        const events: OutcomeEvent[] = [];
        const store = postgresStore(single, { table: TABLE, onOutcome: (e) => events.push(e) });
        const before = await nextClient(single);
        const gid = randomUUID();
        const error = await action(gid)
          .call(store, async (tx) => {
            await record(tx, gid, 'before the failure');
            try {
              await tx.query('SELECT 1 / 0');
            } catch {
              // The business code carries on as if nothing happened.
            }
            return 'looks fine';
          })
          .then(
            (result) => result,
            (e: unknown) => e,
          );
        expect(error).toBeInstanceOf(BarrierTransactionAborted);
        expect(error).not.toBeInstanceOf(BarrierOngoing);
        expect((error as Error).message).toMatch(/aborted.*nothing was committed/);
        expect(events.map((e) => e.outcome)).toEqual(['error']);
        expect(await barrierRows(gid)).toEqual([]);
        expect(await postgresNotes(pool, NOTES, gid)).toEqual([]);
        // The client went back to the pool, out of any transaction, and the retry applies.
        expect(single.totalCount).toBe(single.idleCount);
        expect(await nextClient(single)).toEqual({ pid: before.pid, inTransaction: false });
        expect((await action(gid).call(store, (tx) => record(tx, gid, 'retry'))).outcome).toBe('applied');
      } finally {
        await single.end();
      }
    });

    it('rethrows a failing statement of the business code unchanged, after a clean rollback', async () => {
      const single = postgresPool({ max: 1 });
      try {
        const store = postgresStore(single, { table: TABLE });
        const before = await nextClient(single);
        const gid = randomUUID();
        const failed = await action(gid)
          .call(store, async (tx) => {
            await record(tx, gid, 'half');
            await tx.query('SELECT 1 / 0');
          })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(failed).toMatchObject({ code: '22012' });
        expect(failed).not.toBeInstanceOf(BarrierError);
        expect(await nextClient(single)).toEqual({ pid: before.pid, inTransaction: false });
        expect(await barrierRows(gid)).toEqual([]);
      } finally {
        await single.end();
      }
    });

    it('destroys a client whose connection died; the business error still surfaces unchanged', async () => {
      const single = postgresPool({ max: 1 });
      try {
        const store = postgresStore(single, { table: TABLE });
        const gid = randomUUID();
        const boom = new Error('boom after the connection died');
        let killed = 0;
        await expect(
          action(gid).call(store, async (tx) => {
            await record(tx, gid, 'lost');
            killed = await backendPid(tx);
            await pool.query('SELECT pg_terminate_backend($1)', [killed]);
            // Let the client notice while no query is running: it emits 'error', which must not crash the process.
            await new Promise((resolve) => setTimeout(resolve, 50));
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(single.totalCount).toBe(0);
        expect((await nextClient(single)).pid).not.toBe(killed);
        expect(await postgresNotes(pool, NOTES, gid)).toEqual([]);
      } finally {
        await single.end();
      }
    });

    it('fails the call when COMMIT cannot be sent, commits nothing, and the retry applies', async () => {
      const single = postgresPool({ max: 1 });
      try {
        const store = postgresStore(single, { table: TABLE });
        const gid = randomUUID();
        const lost = await action(gid)
          .call(store, async (tx) => {
            await record(tx, gid, 'lost');
            await pool.query('SELECT pg_terminate_backend($1)', [await backendPid(tx)]);
          })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(lost).toBeInstanceOf(Error);
        expect(lost).not.toBeInstanceOf(BarrierOngoing);
        expect(single.totalCount).toBe(0);
        expect((await action(gid).call(store, (tx) => record(tx, gid, 'retry'))).outcome).toBe('applied');
        expect(await postgresNotes(pool, NOTES, gid)).toEqual(['retry']);
      } finally {
        await single.end();
      }
    });

    it('guards work inside a transaction the caller opened, and never commits it', async () => {
      const gid = randomUUID();
      const inUserTransaction = async (end: 'COMMIT' | 'ROLLBACK', note: string) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const result = await action(gid).within(postgresExecutor(client, { table: TABLE }), (tx) => record(tx, gid, note));
          const { rows } = await client.query('SELECT now() = statement_timestamp() AS idle');
          expect(rows[0].idle).toBe(false);
          await client.query(end);
          return result.outcome;
        } finally {
          client.release();
        }
      };
      expect(await inUserTransaction('ROLLBACK', 'rolled back')).toBe('applied');
      expect(await inUserTransaction('COMMIT', 'committed')).toBe('applied');
      expect(await inUserTransaction('COMMIT', 'repeat')).toBe('duplicate');
      expect(await postgresNotes(pool, NOTES, gid)).toEqual(['committed']);
      expect(() => postgresExecutor(pool, { table: 'not a table' })).toThrow(BarrierConfigError);
    });

    it('refuses, in postgresExecutor, a client that is not in a transaction, before writing anything', async () => {
      const client = await pool.connect();
      try {
        expect(() => postgresExecutor(client, { table: TABLE })).toThrow(/not in a transaction/);
        await client.query('BEGIN');
        expect(postgresExecutor(client, { table: TABLE }).table).toBe(TABLE);
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    });
  });
});
