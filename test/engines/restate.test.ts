/**
 * `txbarrier/restate`'s keys on the three stores, without a Restate server (the behaviour against a
 * real server is test/peers/restate/, `npm run test:restate`, on Node >= 22). A context here is what
 * a handler's `ctx` gives the adapter: the invocation id, and `run`, which runs the action as a
 * first attempt does; a retried attempt is a new context with the same invocation id, whose `run`
 * skips the steps the journal already holds, as Restate's replay does.
 */
import { randomUUID } from 'node:crypto';
import type * as restate from '@restatedev/restate-sdk';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { type RestateContext, type RestateRunOptions, restateSaga, runStep, stepBarrier } from '../../adapters/engines/restate.js';
import { postgresExecutor } from '../../adapters/stores/postgres.js';
import { type Barrier, type BarrierResult, compositeKey, keyPart } from '../../src/index.js';
import type { Harness } from '../barrier/conformance.js';
import { postgresHarness, mysqlHarness, postgresPool } from '../support/server-harness.js';
import { hasServer } from '../support/servers.js';
import { sqliteHarness } from '../stores/sqlite-harness.js';

/**
 * One attempt of an invocation: `journaled` holds the results of the steps an earlier attempt
 * recorded, by position; their actions are not run again (a replay), the others are and get recorded.
 */
function attempt(id: string, journaled: unknown[] = []): RestateContext & { names: string[] } {
  const names: string[] = [];
  return {
    names,
    request: () => ({ id }),
    async run<T>(name: string, action: () => Promise<T>): Promise<T> {
      const position = names.push(name) - 1;
      if (position < journaled.length) return journaled[position] as T;
      const result = await action();
      journaled.push(result);
      return result;
    },
  };
}

function describeRestate<Tx>(engine: string, setup: () => Promise<Harness<Tx>>) {
  describe(`txbarrier/restate on ${engine}`, () => {
    let h: Harness<Tx>;
    beforeAll(async () => {
      h = await setup();
    });
    afterAll(() => h?.close());

    /** A step whose transaction writes one business row noted `note` under the invocation's gid. */
    const step = (ctx: RestateContext, name: string, note: string) =>
      runStep(ctx, name, (barrier) => barrier.call(h.store, (tx) => h.record(tx, keyPart(ctx.request().id), note)).then((r) => r.outcome));

    it('keys a step by invocation id, name and occurrence: a repeated name is a step of its own', async () => {
      const id = `inv_${randomUUID()}`;
      const ctx = attempt(id);
      expect([await step(ctx, 'charge', 'a'), await step(ctx, 'charge', 'b'), await step(ctx, 'ship', 'c')]).toEqual(['applied', 'applied', 'applied']);
      expect(ctx.names).toEqual(['charge', 'charge', 'ship']);
      const rows = await h.barrierRows(id);
      expect(rows.map((r) => [r.trans_type, r.gid, r.branch_id, r.op]).sort()).toEqual([
        ['saga', id, 'charge/0', 'action'],
        ['saga', id, 'charge/1', 'action'],
        ['saga', id, 'ship/0', 'action'],
      ]);
      expect(await h.notes(id)).toEqual(['a', 'b', 'c']);
    });

    it('recognises a step that committed but was not journaled when the next attempt runs it again', async () => {
      const id = `inv_${randomUUID()}`;
      const journal: unknown[] = [];
      const first = attempt(id, journal);
      expect(await step(first, 'charge', 'first')).toBe('applied');
      // The process died after the second step's commit, before Restate recorded it.
      await stepBarrier(first, 'charge').call(h.store, (tx) => h.record(tx, id, 'second'));
      const retry = attempt(id, journal);
      // The replay skips the journaled step's action, yet counts it: the second step keeps index 1.
      expect([await step(retry, 'charge', 'first again'), await step(retry, 'charge', 'second again')]).toEqual(['applied', 'duplicate']);
      expect(await h.notes(id)).toEqual(['first', 'second']);
    });

    it('applies a step the dead attempt never reached, though the replay skipped the journaled one of the same name', async () => {
      const id = `inv_${randomUUID()}`;
      const journal: unknown[] = [];
      expect(await step(attempt(id, journal), 'charge', 'first')).toBe('applied');
      // The process died before the second `charge` started. Its occurrence is still 1 on the retry:
      // a count taken inside the actions would make it 0 and take it for the first.
      const retry = attempt(id, journal);
      expect([await step(retry, 'charge', 'first again'), await step(retry, 'charge', 'second')]).toEqual(['applied', 'applied']);
      expect(await h.notes(id)).toEqual(['first', 'second']);
    });

    it('gives a saga compensation its action key with op compensate: undo, null compensation, dangling', async () => {
      const id = `inv_${randomUUID()}`;
      const ctx = attempt(id);
      const saga = restateSaga(ctx);
      const work = (note: string) => (barrier: Barrier) => barrier.call(h.store, (tx) => h.record(tx, id, note)).then((r) => r.outcome);
      expect(await saga.step('debit', work('debit'), work('undo debit'))).toBe('applied');
      // The credit step's action is late: its compensation runs first, then the action arrives.
      let late: (() => Promise<unknown>) | undefined;
      const credit = saga.step('credit', (barrier) => new Promise((resolve) => (late = () => work('credit')(barrier).then(resolve))), work('undo credit'));
      await saga.compensate();
      await late!();
      expect(await credit).toBe('dangling');
      expect(ctx.names).toEqual(['debit', 'credit', 'credit (compensate)', 'debit (compensate)']);
      expect(await h.notes(id)).toEqual(['debit', 'undo debit']);
      const rows = await h.barrierRows(id);
      expect(rows.map((r) => [r.branch_id, r.op]).sort()).toEqual([
        ['credit/0', 'action'],
        ['credit/0', 'compensate'],
        ['debit/0', 'action'],
        ['debit/0', 'compensate'],
      ]);
      // Forgotten once run: a second compensate() runs nothing.
      await saga.compensate();
      expect(ctx.names).toHaveLength(4);
    });

    it('hashes an invocation id and a step name too long for their columns, keeping two that share a prefix apart', async () => {
      const prefix = `inv_${randomUUID()}-${'x'.repeat(900)}`;
      const [long1, long2] = [`${prefix}1`, `${prefix}2`];
      const name = `step-${'y'.repeat(300)}`;
      const [ctx1, ctx2] = [attempt(long1), attempt(long2)];
      expect(await step(ctx1, name, 'one')).toBe('applied');
      expect(await step(ctx2, name, 'two')).toBe('applied');
      expect(await step(attempt(long1), name, 'again')).toBe('duplicate');
      expect(keyPart(long1)).not.toBe(keyPart(long2));
      expect((await h.barrierRows(keyPart(long1))).map((r) => r.branch_id)).toEqual([compositeKey([name, '0'])]);
      expect([...compositeKey([name, '0'])].length).toBeLessThanOrEqual(128);
      expect(await h.notes(keyPart(long1))).toEqual(['one']);
    });
  });
}

describeRestate('SQLite', sqliteHarness);
describe.skipIf(!hasServer('mysql'))('MariaDB', () => {
  describeRestate('MariaDB', () => mysqlHarness({ table: 'h3_restate.barrier', notes: 'h3_restate.notes' }));
});
describe.skipIf(!hasServer('postgres'))('PostgreSQL', () => {
  describeRestate('PostgreSQL', () => postgresHarness({ table: 'h3_restate.barrier', notes: 'h3_restate.notes' }));

  it('runs a step inside a transaction the handler opened (an executor)', async () => {
    const pool = postgresPool();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await runStep(attempt(`inv_${randomUUID()}`), 'debit', (barrier) =>
        barrier.within(postgresExecutor(client, { table: 'h3_restate.barrier' }), (tx) => {
          expectTypeOf(tx).toEqualTypeOf<pg.PoolClient>();
          return 7;
        }),
      );
      await client.query('COMMIT');
      expectTypeOf(result).toEqualTypeOf<BarrierResult<number>>();
      expect(result).toEqual({ outcome: 'applied', value: 7 });
    } finally {
      client.release();
      await pool.end();
    }
  });
});

describe('txbarrier/restate input', () => {
  it("takes the SDK's contexts without a cast", () => {
    expectTypeOf<restate.Context>().toExtend<RestateContext>();
    expectTypeOf<restate.ObjectContext>().toExtend<RestateContext>();
    expectTypeOf<restate.WorkflowContext>().toExtend<RestateContext>();
    expectTypeOf<Omit<restate.RunOptions<number>, 'serde'>>().toExtend<RestateRunOptions>();
  });

  it('refuses an empty step name and an empty invocation id with ERR_TXBARRIER_INPUT; a refused name takes no index', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as { code?: string }).code;
      }
      return 'no error';
    };
    const ctx = attempt('inv_1');
    expect(code(() => stepBarrier(ctx, ''))).toBe('ERR_TXBARRIER_INPUT');
    expect(code(() => stepBarrier(attempt(''), 'debit'))).toBe('ERR_TXBARRIER_INPUT');
    expect(code(() => restateSaga(ctx).step('', async () => 1, async () => 1))).toBe('ERR_TXBARRIER_INPUT');
    expect(stepBarrier(ctx, 'debit').branchId).toBe('debit/0');
    expect(stepBarrier(ctx, 'debit').branchId).toBe('debit/1');
    // A step name holding the separator cannot pass for another name's occurrence.
    expect(stepBarrier(ctx, 'debit/0').branchId).toBe('debit%2F0/0');
  });
});
