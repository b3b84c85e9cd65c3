/**
 * What every ORM executor must do inside a transaction the library opened and commits, run
 * unchanged against each library and engine. A test file supplies an `OrmHarness`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutorOptions } from '../../adapters/orm/executor-options.js';
import { errorChain } from '../../src/dialects/dialect.js';
import {
  Barrier,
  BarrierConfigError,
  BarrierDuplicateMessage,
  type BarrierExecutor,
  BarrierOngoing,
  BarrierTransactionAborted,
  type DialectName,
  type OutcomeEvent,
  type Row,
} from '../../src/index.js';

export interface OrmHarness<Tx> {
  /** The barrier table, created by the harness with the dialect's own DDL. */
  table: string;
  /** Runs `work` in the library's own transaction: commits if it resolves, rolls back if it throws. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** The same at REPEATABLE READ (Postgres harnesses), where a row committed after the snapshot fails the insert. */
  repeatableRead?<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  executor(tx: Tx, options?: ExecutorOptions): BarrierExecutor<Tx>;
  /** Inserts one business row through the library, inside `tx`. */
  record(tx: Tx, gid: string, note: string): Promise<void>;
  /** A committed read through the library, outside any transaction; `?` placeholders. */
  query(sql: string, params: unknown[]): Promise<Row[]>;
  /** The business table. */
  notes: string;
  /** The library's handle that is not a transaction (the knex instance, the Kysely db…). */
  outsideTransaction: unknown;
  close(): Promise<void>;
}

/** The business table's DDL for one engine. */
export function notesTableSql(engine: DialectName, name: string): string {
  const columns = {
    sqlite: 'seq INTEGER PRIMARY KEY AUTOINCREMENT, gid TEXT NOT NULL, note TEXT NOT NULL',
    mysql: 'seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, gid VARCHAR(200) NOT NULL, note VARCHAR(64) NOT NULL',
    postgres: 'seq BIGSERIAL PRIMARY KEY, gid TEXT NOT NULL, note TEXT NOT NULL',
  }[engine];
  return `CREATE TABLE IF NOT EXISTS ${name} (${columns})`;
}

type Fields = Parameters<typeof Barrier.from>[0];

export function describeExecutor<Tx>(name: string, engine: DialectName, setup: () => Promise<OrmHarness<Tx>>): void {
  describe(`executor: ${name}`, () => {
    let h: OrmHarness<Tx>;
    beforeAll(async () => {
      h = await setup();
    });
    afterAll(async () => {
      await h?.close();
    });

    const gidOf = () => `orm-${randomUUID()}`;
    const barrier = (gid: string, transType: string, op: string) => Barrier.from({ transType, gid, branchId: '01', op } as Fields);
    /** One delivery in the library's own transaction, the caller committing whatever the outcome. */
    const deliver = (gid: string, transType: string, op: string) =>
      h.transaction((tx) =>
        barrier(gid, transType, op).within(h.executor(tx, { table: h.table }), async (inner) => {
          expect(inner).toBe(tx);
          await h.record(inner, gid, op);
          return op;
        }),
      );
    const notes = async (gid: string) =>
      (await h.query(`SELECT note FROM ${h.notes} WHERE gid = ? ORDER BY seq`, [gid])).map((r) => r.note);
    const barrierRows = async (gid: string) =>
      (await h.query(`SELECT op, reason, barrier_id FROM ${h.table} WHERE gid = ?`, [gid]))
        .map((r) => `${r.barrier_id}:${r.op}:${r.reason}`)
        .sort();

    it('detects the engine from the library', async () => {
      await h.transaction(async (tx) => {
        const executor = h.executor(tx);
        expect(executor.dialect.name).toBe(engine);
        expect(executor.tx).toBe(tx);
        expect(h.executor(tx, { dialect: engine, table: 'orm_other' }).table).toBe('orm_other');
      });
    });

    it('commits the business rows and the barrier row together; a repeat is a duplicate', async () => {
      const gid = gidOf();
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'applied', value: 'action' });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'duplicate' });
      expect(await notes(gid)).toEqual(['action']);
      expect(await barrierRows(gid)).toEqual(['01:action:action']);
    });

    it('rolls back business and barrier rows when the function throws; the retry applies', async () => {
      const gid = gidOf();
      const boom = new Error('business broke');
      const failing = h.transaction((tx) =>
        barrier(gid, 'saga', 'action').within(h.executor(tx, { table: h.table }), async (inner) => {
          await h.record(inner, gid, 'half-done');
          throw boom;
        }),
      );
      await expect(failing).rejects.toBe(boom);
      expect(await notes(gid)).toEqual([]);
      expect(await barrierRows(gid)).toEqual([]);
      expect((await deliver(gid, 'saga', 'action')).outcome).toBe('applied');
    });

    it('suppresses a null compensation inside the transaction, keeps its rows, and blocks the late action', async () => {
      const gid = gidOf();
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'null-compensation' });
      expect(await barrierRows(gid)).toEqual(['01:action:compensate', '01:compensate:compensate']);
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'duplicate' });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'dangling' });
      expect(await notes(gid)).toEqual([]);
    });

    it('compensates an applied tcc try once', async () => {
      const gid = gidOf();
      await deliver(gid, 'tcc', 'try');
      expect(await deliver(gid, 'tcc', 'cancel')).toEqual({ outcome: 'applied', value: 'cancel' });
      expect(await deliver(gid, 'tcc', 'cancel')).toEqual({ outcome: 'duplicate' });
      expect(await notes(gid)).toEqual(['try', 'cancel']);
      expect(await barrierRows(gid)).toEqual(['01:cancel:cancel', '01:try:try']);
    });

    it('loses the null compensation if the caller rolls back a suppressed outcome: the late action then applies', async () => {
      const gid = gidOf();
      const undone = new Error('caller rolled back');
      const rolledBack = h.transaction(async (tx) => {
        const result = await barrier(gid, 'saga', 'compensate').within(h.executor(tx, { table: h.table }), () => 'unused');
        expect(result.outcome).toBe('null-compensation');
        throw undone;
      });
      await expect(rolledBack).rejects.toBe(undone);
      expect(await barrierRows(gid)).toEqual([]);
      // The wrong thing, shown: nothing stops the action that the compensation was meant to block.
      expect((await deliver(gid, 'saga', 'action')).outcome).toBe('applied');
    });

    it('numbers two guarded steps in one transaction 01 and 02, and replays both as duplicates', async () => {
      const gid = gidOf();
      const handler = () =>
        h.transaction(async (tx) => {
          const b = barrier(gid, 'saga', 'action');
          const executor = h.executor(tx, { table: h.table });
          const first = await b.within(executor, (inner) => h.record(inner, gid, 'first'));
          const second = await b.within(executor, (inner) => h.record(inner, gid, 'second'));
          return [first.outcome, second.outcome];
        });
      expect(await handler()).toEqual(['applied', 'applied']);
      expect(await handler()).toEqual(['duplicate', 'duplicate']);
      expect(await notes(gid)).toEqual(['first', 'second']);
      expect(await barrierRows(gid)).toEqual(['01:action:action', '02:action:action']);
    });

    it('runs a 2-phase message once; a repeat throws', async () => {
      const gid = gidOf();
      const send = () =>
        h.transaction((tx) => Barrier.forMessage(gid).within(h.executor(tx, { table: h.table }), (inner) => h.record(inner, gid, 'msg')));
      expect((await send()).outcome).toBe('applied');
      await expect(send()).rejects.toMatchObject({ name: BarrierDuplicateMessage.name, committed: true });
      expect(await notes(gid)).toEqual(['msg']);
    });

    it('gives one applied and one duplicate for two identical requests at once', async () => {
      const gid = gidOf();
      const outcomes = await Promise.all([deliver(gid, 'saga', 'action'), deliver(gid, 'saga', 'action')]);
      expect(outcomes.map((o) => o.outcome).sort()).toEqual(['applied', 'duplicate']);
      expect(await notes(gid)).toEqual(['action']);
    });

    // Only Postgres fails a snapshot conflict instead of waiting; it exercises each library's error wrapping.
    if (engine === 'postgres') {
      it('maps a serialization failure, as the library wraps it, to BarrierOngoing', async () => {
        const gid = gidOf();
        const late = h.repeatableRead!(async (tx) => {
          await h.record(tx, gid, 'snapshot taken');
          // Another request commits the same op's row after this transaction's snapshot.
          expect((await deliver(gid, 'saga', 'action')).outcome).toBe('applied');
          return barrier(gid, 'saga', 'action').within(h.executor(tx, { table: h.table }), () => 'late');
        });
        const error = await late.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(BarrierOngoing);
        expect(JSON.stringify([...errorChain(error)].map((e) => e.code))).toContain('40001');
        expect(await notes(gid)).toEqual(['action']);
      });

      it('refuses to report applied when the business code swallowed a failed statement: COMMIT would roll back', async () => {
        const gid = gidOf();
        const swallowed = h.transaction((tx) => {
          const executor = h.executor(tx, { table: h.table });
          return barrier(gid, 'saga', 'action').within(executor, async (inner) => {
            await h.record(inner, gid, 'lost');
            await executor.select('SELECT 1 / 0', []).catch(() => 'carried on');
            return 'looks fine';
          });
        });
        await expect(swallowed).rejects.toBeInstanceOf(BarrierTransactionAborted);
        // The caller's transaction rolled back and the retry applies.
        expect(await notes(gid)).toEqual([]);
        expect((await deliver(gid, 'saga', 'action')).outcome).toBe('applied');
      });
    }

    it('reports outcomes to the hooks given in the options', async () => {
      const events: OutcomeEvent[] = [];
      const gid = gidOf();
      await h.transaction((tx) =>
        barrier(gid, 'saga', 'compensate').within(h.executor(tx, { table: h.table, onOutcome: (e) => events.push(e) }), () => 'unused'),
      );
      expect(events.map((e) => [e.gid, e.op, e.outcome])).toEqual([[gid, 'compensate', 'null-compensation']]);
    });

    it('never reports an outcome as committed before the caller committed, nor when it rolled back', async () => {
      const events: OutcomeEvent[] = [];
      const onOutcome = (e: OutcomeEvent) => events.push({ ...e });
      const gid = gidOf();
      let seenBeforeCommit: boolean[] = [];
      let ends = false;
      await h.transaction(async (tx) => {
        const executor = h.executor(tx, { table: h.table, onOutcome });
        ends = executor.onTransactionEnd !== undefined;
        await barrier(gid, 'saga', 'action').within(executor, () => 'done');
        seenBeforeCommit = events.map((e) => e.committed);
      });
      // Reported before the COMMIT only as an uncommitted decision; after it, if the library tells, as committed.
      expect(seenBeforeCommit.every((committed) => committed === false)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(events.map((e) => e.outcome)).toEqual(['applied']);
      expect(events[0]!.committed).toBe(ends);

      events.length = 0;
      const rolledBack = gidOf();
      await expect(
        h.transaction(async (tx) => {
          await barrier(rolledBack, 'saga', 'action').within(h.executor(tx, { table: h.table, onOutcome }), () => 'done');
          throw new Error('the caller rolls back after the barrier decided');
        }),
      ).rejects.toThrow('rolls back');
      await new Promise((resolve) => setTimeout(resolve, 20));
      // Never "committed": either reported as the decision before the commit, or (knex) as rolled back, or (Sequelize) not at all.
      expect(events.every((e) => e.committed === false)).toBe(true);
    });

    it('refuses a handle outside a transaction, a bad table name and an unknown dialect', async () => {
      expect(() => h.executor(h.outsideTransaction as Tx)).toThrow(BarrierConfigError);
      expect(() => h.executor(h.outsideTransaction as Tx)).toThrow(/transaction/);
      await h.transaction(async (tx) => {
        expect(() => h.executor(tx, { table: 'orm; drop table x' })).toThrow(BarrierConfigError);
        expect(() => h.executor(tx, { dialect: 'oracle' as DialectName })).toThrow(/dialect must be one of/);
      });
    });
  });
}

/** `?` placeholders as `$1, $2, …`, for libraries that hand Postgres the SQL as written. */
export function numbered(sql: string): string {
  let index = 0;
  return sql.replace(/\?/g, () => `$${++index}`);
}

/** A fresh SQLite file in WAL mode, removed by the returned cleanup. */
export function tempSqliteFile(): { file: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-orm-'));
  return { file: join(dir, 'test.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
