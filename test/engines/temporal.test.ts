/**
 * `txbarrier/temporal`'s keys on the three stores, without a Temporal server (the behaviour
 * against a real server is test/peers/temporal/, `npm run test:temporal`): a saga step's action and
 * compensation share one identity, a standalone activity is keyed by workflow id and activity id,
 * identities too long for the columns are hashed, and an activity no workflow scheduled is refused.
 */
import { randomUUID } from 'node:crypto';
import type { Info } from '@temporalio/activity';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { activityBarrier, sagaStepBarrier, type TemporalActivityInfo } from '../../adapters/engines/temporal.js';
import { postgresExecutor } from '../../adapters/stores/postgres.js';
import { type BarrierResult, keyPart } from '../../src/index.js';
import type { Harness } from '../barrier/conformance.js';
import { postgresHarness, mysqlHarness, postgresPool } from '../support/server-harness.js';
import { hasServer } from '../support/servers.js';
import { sqliteHarness } from '../stores/sqlite-harness.js';

const info = (workflowId: string, activityId = '1'): TemporalActivityInfo => ({ activityId, workflowExecution: { workflowId } });

function describeTemporal<Tx>(engine: string, setup: () => Promise<Harness<Tx>>) {
  describe(`txbarrier/temporal on ${engine}`, () => {
    let h: Harness<Tx>;
    beforeAll(async () => {
      h = await setup();
    });
    afterAll(() => h?.close());

    const step = (workflowId: string, name: string, op: 'action' | 'compensate') =>
      // Business rows under the key too: the notes table's columns are as narrow as the barrier's.
      sagaStepBarrier(info(workflowId), name, op).call(h.store, (tx) => h.record(tx, keyPart(workflowId), op));

    it('keys a saga step by workflow id and step name; its compensation shares the key', async () => {
      const workflowId = `wf-${randomUUID()}`;
      expect((await step(workflowId, 'debit', 'action')).outcome).toBe('applied');
      expect((await step(workflowId, 'debit', 'action')).outcome).toBe('duplicate');
      expect((await step(workflowId, 'debit', 'compensate')).outcome).toBe('applied');
      expect((await step(workflowId, 'debit', 'compensate')).outcome).toBe('duplicate');
      expect(await h.notes(workflowId)).toEqual(['action', 'compensate']);
      const rows = await h.barrierRows(workflowId);
      expect(rows.map((r) => [r.trans_type, r.gid, r.branch_id, r.op]).sort()).toEqual([
        ['saga', workflowId, 'debit', 'action'],
        ['saga', workflowId, 'debit', 'compensate'],
      ]);
    });

    it('makes a compensation that overtook its action a null compensation, and the late action dangling', async () => {
      const workflowId = `wf-${randomUUID()}`;
      expect((await step(workflowId, 'credit', 'compensate')).outcome).toBe('null-compensation');
      expect((await step(workflowId, 'credit', 'action')).outcome).toBe('dangling');
      expect(await h.notes(workflowId)).toEqual([]);
    });

    it('keys a standalone activity by workflow id and activity id', async () => {
      const [a, b] = [`wf-${randomUUID()}`, `wf-${randomUUID()}`];
      const run = (workflowId: string, activityId: string) =>
        activityBarrier(info(workflowId, activityId)).call(h.store, (tx) => h.record(tx, workflowId, activityId));
      expect((await run(a, '1')).outcome).toBe('applied');
      expect((await run(a, '1')).outcome).toBe('duplicate');
      expect((await run(a, '2')).outcome).toBe('applied');
      expect((await run(b, '1')).outcome).toBe('applied');
      expect(await h.notes(a)).toEqual(['1', '2']);
      expect((await h.barrierRows(a)).map((r) => [r.branch_id, r.op]).sort()).toEqual([
        ['1', 'action'],
        ['2', 'action'],
      ]);
    });

    it('hashes a workflow id and a step name too long for their columns, keeping two that share a prefix apart', async () => {
      const prefix = `wf-${randomUUID()}-${'x'.repeat(900)}`;
      const [long1, long2] = [`${prefix}1`, `${prefix}2`];
      const name = `step-${'y'.repeat(300)}`;
      expect((await step(long1, name, 'action')).outcome).toBe('applied');
      expect((await step(long2, name, 'action')).outcome).toBe('applied');
      expect((await step(long1, name, 'action')).outcome).toBe('duplicate');
      expect((await step(long1, name, 'compensate')).outcome).toBe('applied');
      const rows = await h.barrierRows(keyPart(long1));
      expect(rows.map((r) => [r.branch_id, r.op]).sort()).toEqual([
        [keyPart(name), 'action'],
        [keyPart(name), 'compensate'],
      ]);
      expect(await h.notes(keyPart(long1))).toEqual(['action', 'compensate']);
      expect(keyPart(long1)).not.toBe(keyPart(long2));
      expect([...keyPart(long1)].length).toBeLessThanOrEqual(128);
    });
  });
}

describeTemporal('SQLite', sqliteHarness);
describe.skipIf(!hasServer('mysql'))('MariaDB', () => {
  describeTemporal('MariaDB', () => mysqlHarness({ table: 'h3_temporal.barrier', notes: 'h3_temporal.notes' }));
});
describe.skipIf(!hasServer('postgres'))('PostgreSQL', () => {
  describeTemporal('PostgreSQL', () => postgresHarness({ table: 'h3_temporal.barrier', notes: 'h3_temporal.notes' }));

  it('runs a step inside a transaction the activity opened (an executor)', async () => {
    const pool = postgresPool();
    const client = await pool.connect();
    try {
      const workflowId = `wf-${randomUUID()}`;
      await client.query('BEGIN');
      const result = await sagaStepBarrier(info(workflowId), 'debit', 'action').within(postgresExecutor(client, { table: 'h3_temporal.barrier' }), (tx) => {
        expectTypeOf(tx).toEqualTypeOf<pg.PoolClient>();
        return 7;
      });
      await client.query('COMMIT');
      expectTypeOf(result).toEqualTypeOf<BarrierResult<number>>();
      expect(result).toEqual({ outcome: 'applied', value: 7 });
    } finally {
      client.release();
      await pool.end();
    }
  });
});

describe('txbarrier/temporal input', () => {
  it('reads the activity info the SDK hands an activity, without a cast', () => {
    expectTypeOf<Info>().toExtend<TemporalActivityInfo>();
    expectTypeOf(sagaStepBarrier).parameter(2).toEqualTypeOf<'action' | 'compensate'>();
  });

  it('refuses an activity no workflow scheduled, an empty step and an unknown op, with ERR_TXBARRIER_INPUT', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return (error as { code?: string }).code;
      }
      return 'no error';
    };
    expect(code(() => activityBarrier({ activityId: '1' }))).toBe('ERR_TXBARRIER_INPUT');
    expect(code(() => sagaStepBarrier({ workflowExecution: undefined }, 'debit', 'action'))).toBe('ERR_TXBARRIER_INPUT');
    expect(code(() => sagaStepBarrier(info('wf'), '', 'action'))).toBe('ERR_TXBARRIER_INPUT');
    // @ts-expect-error: a saga step has no `try` op
    expect(code(() => sagaStepBarrier(info('wf'), 'debit', 'try'))).toBe('ERR_TXBARRIER_INPUT');
  });
});
