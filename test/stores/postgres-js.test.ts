/**
 * postgres.js on a real PostgreSQL server: the store through the store conformance and race suites,
 * the executor inside `sql.begin` through the executor suite, and what is its own: BEGIN pipelined
 * with the barrier's insert, COMMIT's answer checked, a timed-out connection ended and never reused.
 */
import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresJsExecutor, postgresJsStore } from '../../adapters/stores/postgres-js.js';
import { Barrier, BarrierConfigError, BarrierTimeout, BarrierTransactionAborted, postgresDialect } from '../../src/index.js';
import type { BarrierRowRead } from '../barrier/conformance.js';
import { describeConformance } from '../barrier/conformance.js';
import { describeExecutor, notesTableSql, numbered } from '../orm/conformance.js';
import { describeBoundedWaits, describeRaces, type RaceHarness } from '../barrier/races.js';
import { createPostgresNotes, type PostgresPool, postgresLockWaits, postgresNotes, postgresPool } from '../support/server-harness.js';
import { hasServer } from '../support/servers.js';
import { POSTGRES_URL } from '../../servers/index.js';

type Sql = postgres.Sql;
type Reserved = postgres.ReservedSql;

const TABLE = 'pgjs.barrier';
const NOTES = 'pgjs.notes';
const connect = (options: postgres.Options<{}> = {}) => postgres(POSTGRES_URL, { max: 8, onnotice: () => {}, ...options });
const record = async (tx: Reserved, gid: string, note: string) => {
  await tx.unsafe(`INSERT INTO ${NOTES} (gid, note) VALUES ($1, $2)`, [gid, note]);
};
const action = (gid: string) => Barrier.from({ transType: 'saga', gid, branchId: '01', op: 'action' });

describe.skipIf(!hasServer('postgres'))('postgres.js', () => {
  // A pg pool only to observe from outside: committed rows, lock waits.
  let observer: PostgresPool;
  let sql: Sql;
  beforeAll(async () => {
    observer = postgresPool({ max: 2 });
    sql = connect();
    await postgresJsStore(sql, { table: TABLE }).ensureSchema();
    await createPostgresNotes(observer, NOTES);
  });
  afterAll(async () => {
    await sql?.end();
    await observer?.end();
  });

  describeConformance('postgres.js store', async () => ({
    store: postgresJsStore(sql, { table: TABLE }),
    makeStore: (options) => postgresJsStore(sql, options),
    record,
    notes: (gid) => postgresNotes(observer, NOTES, gid),
    barrierRows: async (gid) => (await observer.query(`SELECT * FROM ${TABLE} WHERE gid = $1`, [gid])).rows as BarrierRowRead[],
    close: async () => {},
  }));

  describe('races', () => {
    const harness: RaceHarness<Reserved> = {
      store: (isolationLevel, options) => postgresJsStore(sql, { table: TABLE, isolationLevel, ...options }),
      record,
      waitingBehind: async (holder) => {
        const [row] = await (await holder.entered).unsafe('SELECT pg_backend_pid() AS pid');
        return postgresLockWaits(observer, Number(row!.pid), 1);
      },
      notes: (gid) => postgresNotes(observer, NOTES, gid),
    };
    describeRaces(
      [
        { label: 'the default level (read committed)' },
        { label: 'repeatable read', isolationLevel: 'repeatable read', snapshotConflict: { code: '40001' } },
      ],
      () => harness,
    );
    describeBoundedWaits(() => harness, { lockTimeout: 300 });
  });

  describeExecutor<postgres.TransactionSql>('postgres.js sql.begin', 'postgres', async () => {
    const db = connect({ max: 4 });
    const notes = 'pgjs.orm_notes';
    for (const statement of postgresDialect.createSchema('pgjs.orm_barrier')) await db.unsafe(statement);
    await db.unsafe(notesTableSql('postgres', notes));
    return {
      table: 'pgjs.orm_barrier',
      notes,
      // postgres.js 4's begin() resolves to its own thenable, 3's to a Promise: both awaited here.
      transaction: async (work) => (await db.begin(work)) as never,
      repeatableRead: async (work) => (await db.begin('isolation level repeatable read', work)) as never,
      executor: postgresJsExecutor,
      record: async (tx, gid, note) => {
        await tx.unsafe(`INSERT INTO ${notes} (gid, note) VALUES ($1, $2)`, [gid, note]);
      },
      query: async (text, params) => [...(await db.unsafe(numbered(text), params as never[]))],
      outsideTransaction: db,
      close: () => db.end(),
    };
  });

  describe('store on a pool of one', () => {
    /** The next connection's backend, and whether it is inside a transaction (as the server reports it from outside). */
    const nextSession = async (db: Sql) => {
      const [row] = await db`SELECT pg_backend_pid() AS pid`;
      const pid = Number(row!.pid);
      const { rows } = await observer.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid]);
      return { pid, inTransaction: rows[0].state !== 'idle' };
    };

    it('runs the business function inside the transaction BEGIN opened, after the insert answered', async () => {
      const db = connect({ max: 1 });
      try {
        const gid = randomUUID();
        const count = `SELECT count(*)::int AS n FROM ${TABLE} WHERE gid = $1`;
        const seen = await action(gid).call(postgresJsStore(db, { table: TABLE }), async (tx) => {
          const [inside] = await tx.unsafe(count, [gid]);
          const { rows: outside } = await observer.query(count, [gid]);
          return [inside!.n, outside[0].n];
        });
        // The barrier row is there, and not yet committed.
        expect(seen).toEqual({ outcome: 'applied', value: [1, 0] });
        expect((await observer.query(count, [gid])).rows[0].n).toBe(1);
        expect((await nextSession(db)).inTransaction).toBe(false);
      } finally {
        await db.end();
      }
    });

    it('sends BEGIN and the barrier insert in one write; the business statement only after the insert answered; then COMMIT', async () => {
      const db = connect({ max: 1 });
      const write = Socket.prototype.write;
      try {
        const store = postgresJsStore(db, { table: TABLE });
        const call = () => action(randomUUID()).call(store, (tx) => tx`SELECT 'business' AS step`);
        // Warm: the statements are prepared, so each later one is a single Bind/Execute.
        await call();
        const writes: string[] = [];
        Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
          writes.push(Buffer.from(chunk as Uint8Array).toString('latin1'));
          return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
        } as typeof write;
        await call();
        Socket.prototype.write = write;
        expect(writes).toHaveLength(3);
        expect(writes[0]).toMatch(/^Q.*BEGIN; SET LOCAL lock_timeout[^]*B[^]*saga[^]*E/);
        expect(writes[1]).not.toMatch(/BEGIN|COMMIT|saga/);
        expect(writes[2]).toMatch(/^Q.*COMMIT/);
      } finally {
        Socket.prototype.write = write;
        await db.end();
      }
    });

    it('refuses to report applied when business code swallowed a failed statement: nothing commits', async () => {
      const db = connect({ max: 1 });
      try {
        const store = postgresJsStore(db, { table: TABLE });
        const before = await nextSession(db);
        const gid = randomUUID();
        const error = await action(gid)
          .call(store, async (tx) => {
            await record(tx, gid, 'before the failure');
            await tx`SELECT 1 / 0`.catch(() => 'carried on');
            return 'looks fine';
          })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BarrierTransactionAborted);
        expect(await postgresNotes(observer, NOTES, gid)).toEqual([]);
        expect(await nextSession(db)).toEqual({ pid: before.pid, inTransaction: false });
        expect((await action(gid).call(store, (tx) => record(tx, gid, 'retry'))).outcome).toBe('applied');
      } finally {
        await db.end();
      }
    });

    it('rolls back a timed-out transaction, refuses its late statements, and gives the connection back clean', async () => {
      const db = connect({ max: 1 });
      try {
        const store = postgresJsStore(db, { table: TABLE, transactionTimeout: 300 });
        const before = await nextSession(db);
        const gid = randomUUID();
        let leaked!: Reserved;
        let resume!: () => void;
        let late!: Promise<unknown>;
        const hung = action(gid).call(store, async (tx) => {
          leaked = tx;
          await record(tx, gid, 'hung');
          await new Promise<void>((resolve) => (resume = resolve));
          // The function outlived its transaction: this must not run on whatever the connection does next.
          late = record(tx, gid, 'late').catch((error: unknown) => error);
        });
        await expect(hung).rejects.toBeInstanceOf(BarrierTimeout);
        expect(await nextSession(db)).toEqual({ pid: before.pid, inTransaction: false });
        expect(() => leaked`SELECT 1`).toThrow(BarrierConfigError);
        expect(() => leaked.unsafe('SELECT 1')).toThrow(/has ended/);
        resume();
        await new Promise((resolve) => setImmediate(resolve));
        expect(await late).toMatchObject({ code: 'ERR_TXBARRIER_TRANSACTION_ENDED' });
        expect((await action(gid).call(store, (tx) => record(tx, gid, 'retry'))).outcome).toBe('applied');
        expect(await postgresNotes(observer, NOTES, gid)).toEqual(['retry']);
      } finally {
        await db.end();
      }
    });

    it('rolls back a function timed out in a running statement once the statement ends, committing nothing', async () => {
      const db = connect({ max: 1 });
      try {
        const store = postgresJsStore(db, { table: TABLE, transactionTimeout: 200 });
        const gid = randomUUID();
        const started = Date.now();
        const slow = action(gid).call(store, async (tx) => {
          await record(tx, gid, 'slow');
          await tx`SELECT pg_sleep(0.8)`;
        });
        await expect(slow).rejects.toBeInstanceOf(BarrierTimeout);
        expect(Date.now() - started).toBeLessThan(700);
        // The pool's one connection comes back after the sleep and the ROLLBACK behind it.
        expect((await nextSession(db)).inTransaction).toBe(false);
        expect(await postgresNotes(observer, NOTES, gid)).toEqual([]);
        expect((await action(gid).call(store, (tx) => record(tx, gid, 'retry'))).outcome).toBe('applied');
      } finally {
        await db.end();
      }
    });

    it('fails the call when the session dies mid-transaction, commits nothing, and the pool of one reconnects', async () => {
      const db = connect({ max: 1 });
      try {
        const store = postgresJsStore(db, { table: TABLE });
        const gid = randomUUID();
        const died = await action(gid)
          .call(store, async (tx) => {
            await record(tx, gid, 'lost');
            const [row] = await tx`SELECT pg_backend_pid() AS pid`;
            await observer.query('SELECT pg_terminate_backend($1)', [row!.pid]);
            await new Promise((resolve) => setTimeout(resolve, 50));
            await record(tx, gid, 'after');
          })
          .catch((e: unknown) => e);
        // The business function's next statement fails rather than hangs: postgres.js 3 would write it
        // to the closed socket, throw an uncaught TypeError from a timer and never settle it, so the
        // store refuses it; postgres.js 4 rejects it with its own CONNECTION_CLOSED.
        expect(['ERR_TXBARRIER_TRANSACTION_ENDED', 'CONNECTION_CLOSED']).toContain((died as { code?: string }).code);
        expect(await postgresNotes(observer, NOTES, gid)).toEqual([]);
        // Had the lost connection stayed reserved, this would wait forever on the pool's only connection.
        expect((await action(gid).call(store, (tx) => record(tx, gid, 'retry'))).outcome).toBe('applied');
        expect(await postgresNotes(observer, NOTES, gid)).toEqual(['retry']);
      } finally {
        await db.end();
      }
    });

    it('gives the business function the reserved connection, which refuses statements after the commit', async () => {
      const db = connect({ max: 1 });
      try {
        let kept!: Reserved;
        await action(randomUUID()).call(postgresJsStore(db, { table: TABLE }), (tx) => {
          kept = tx;
        });
        expect(() => kept`SELECT 1`).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_TRANSACTION_ENDED' }));
        expect(() => kept.release()).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_STORE_CONNECTION' }));
        expect((await nextSession(db)).inTransaction).toBe(false);
      } finally {
        await db.end();
      }
    });
  });

  it('prunes rows past the retention in batches, and only those', async () => {
    const table = `pgjs.prune_${randomUUID().slice(0, 8)}`;
    const store = postgresJsStore(sql, { table });
    await store.ensureSchema();
    try {
      const [old, fresh] = [randomUUID(), randomUUID()];
      for (const gid of [old, fresh]) await action(gid).call(store, () => 'done');
      await Barrier.from({ transType: 'saga', gid: old, branchId: '02', op: 'compensate' }).call(store, () => 'done');
      await sql.unsafe(`UPDATE ${table} SET create_time = now() - interval '8 days' WHERE gid = $1`, [old]);
      const progress: number[] = [];
      expect(await store.prune({ olderThan: '7d', batchSize: 2, onProgress: (n) => progress.push(n) })).toBe(3);
      expect(progress).toEqual([2, 3]);
      expect((await sql.unsafe(`SELECT gid FROM ${table}`)).map((r) => r.gid)).toEqual([fresh]);
    } finally {
      await sql.unsafe(`DROP TABLE ${table}`);
    }
  });

  it('postgresJsExecutor refuses the pool and a reserved connection', async () => {
    const reserved = await sql.reserve();
    try {
      expect(() => postgresJsExecutor(sql)).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_NOT_IN_TRANSACTION' }));
      expect(() => postgresJsExecutor(reserved)).toThrow(/sql.begin/);
    } finally {
      reserved.release();
    }
  });
});
