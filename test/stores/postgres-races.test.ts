/**
 * Racing requests on a real PostgreSQL server: the shared race suite (test/barrier/races.ts), with waiters
 * found through pg_blocking_pids, and PostgreSQL's own: a deadlock between two callers' transactions,
 * a lock timeout.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresQueryable, postgresExecutor, postgresStore } from '../../adapters/stores/postgres.js';
import { Barrier, BarrierOngoing, type BarrierStore } from '../../src/index.js';
import { deliver, describeBoundedWaits, describeRaces, type RaceHarness, type SagaOp } from '../barrier/races.js';
import { hasServer } from '../support/servers.js';
import {
  createPostgresNotes,
  holdOpen,
  type PostgresClient,
  type PostgresPool,
  postgresLockWaits,
  postgresNotes,
  postgresPool,
} from '../support/server-harness.js';

const TABLE = 'h3_pg_race.barrier';
const NOTES = 'h3_pg_race.notes';

describe.skipIf(!hasServer('postgres'))('postgres races', () => {
  let pool: PostgresPool;
  beforeAll(async () => {
    pool = postgresPool();
    await postgresStore(pool, { table: TABLE }).ensureSchema();
    await createPostgresNotes(pool, NOTES);
  });
  afterAll(() => pool?.end());

  const barrier = (gid: string, op: SagaOp) => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
  const backendPid = async (tx: PostgresQueryable) => Number((await tx.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
  const harness: RaceHarness<PostgresClient> = {
    store: (isolationLevel, options) => postgresStore(pool, { table: TABLE, isolationLevel, ...options }),
    record: (tx, gid, note) => tx.query(`INSERT INTO ${NOTES} (gid, note) VALUES ($1, $2)`, [gid, note]),
    // Blocked by the held transaction's backend, as pg_blocking_pids reports it.
    waitingBehind: async (holder) => postgresLockWaits(pool, await backendPid(await holder.entered), 1),
    notes: (gid) => postgresNotes(pool, NOTES, gid),
  };
  const send = (store: BarrierStore<PostgresClient>, gid: string, op: SagaOp) => deliver(harness, store, gid, op);

  describeRaces(
    [
      { label: 'the default level (read committed)' },
      { label: 'read committed', isolationLevel: 'read committed' },
      { label: 'repeatable read', isolationLevel: 'repeatable read', snapshotConflict: { code: '40001' } },
    ],
    () => harness,
  );
  describeBoundedWaits(() => harness, { lockTimeout: 300 });

  it('a deadlock between two barriers in callers’ transactions is BarrierOngoing, and the other applies', async () => {
    // A handler guarding two branches in one transaction of its own (barrier.within), twice at once
    // in crossed order: the only way a barrier statement can take part in a deadlock.
    const [gidA, gidB] = [randomUUID(), randomUUID()];
    const clients = [await pool.connect(), await pool.connect()];
    try {
      for (const client of clients) await client.query('BEGIN');
      const within = (i: number, gid: string) =>
        barrier(gid, 'action').within(postgresExecutor(clients[i]!, { table: TABLE }), (tx) => harness.record(tx, gid, `client ${i}`));
      expect((await within(0, gidA)).outcome).toBe('applied');
      expect((await within(1, gidB)).outcome).toBe('applied');

      const crossed = [within(0, gidB), within(1, gidA)].map((call, i) =>
        // The callers roll back on any error, as they must; the deadlock victim's locks go with it.
        call.catch(async (error: unknown) => {
          await clients[i]!.query('ROLLBACK');
          throw error;
        }),
      );
      const settled = await Promise.allSettled(crossed);
      expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected']);
      const victim = settled.findIndex((s) => s.status === 'rejected');
      const error = (settled[victim] as PromiseRejectedResult).reason;
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect(error.cause).toMatchObject({ code: '40P01' });
      expect((settled[1 - victim] as PromiseFulfilledResult<{ outcome: string }>).value.outcome).toBe('applied');
      await clients[1 - victim]!.query('COMMIT');
      // The survivor holds both branches; the victim's work is gone.
      expect([...(await harness.notes(gidA)), ...(await harness.notes(gidB))]).toEqual([`client ${1 - victim}`, `client ${1 - victim}`]);
    } finally {
      for (const client of clients) client.release();
    }
  });

  it('a lock timeout is BarrierOngoing, and the client goes back to the pool clean', async () => {
    const impatient = postgresPool({ max: 1, options: '-c lock_timeout=200' });
    try {
      const gid = randomUUID();
      const holder = holdOpen(postgresStore(pool, { table: TABLE }));
      const held = send(holder.store, gid, 'action');
      await holder.entered;
      const error = await send(postgresStore(impatient, { table: TABLE }), gid, 'action').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toMatchObject({ code: '55P03' });
      expect(impatient.totalCount).toBe(1);
      expect(impatient.idleCount).toBe(1);
      holder.commit();
      expect((await held).outcome).toBe('applied');
      expect(await send(postgresStore(impatient, { table: TABLE }), gid, 'action')).toEqual({ outcome: 'duplicate' });
      expect(await harness.notes(gid)).toEqual(['action']);
    } finally {
      await impatient.end();
    }
  });
});
