/**
 * The coordinator's check-back for a 2-phase message, raced against the message's local
 * transaction on every engine: it must wait for (or report ongoing) a transaction still open,
 * and never answer `rolledback` for one that then commits.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { Barrier, BarrierDuplicateMessage, BarrierOngoing, type BarrierStore } from '../../src/index.js';
import type { Harness } from './conformance.js';
import { mysqlHarness, mysqlPool, postgresHarness, postgresPool } from '../support/server-harness.js';
import { hasServer, testsEngine } from '../support/servers.js';
import { pgliteHarness } from '../stores/pglite-harness.js';
import { sqliteHarness } from '../stores/sqlite-harness.js';

const TABLES = { table: 'msg_test_barrier', notes: 'msg_test_notes' };

interface MessageEngine<Tx> extends Harness<Tx> {
  /** A store on the same table whose check-back gives up after a short lock wait (servers only). */
  impatientStore?: BarrierStore<Tx>;
}

async function mysqlEngine(): Promise<MessageEngine<unknown>> {
  const harness = await mysqlHarness(TABLES);
  const pool = mysqlPool();
  // innodb_lock_wait_timeout is whole seconds; 1 is the least.
  const impatientPool = {
    async getConnection() {
      const connection = await pool.getConnection();
      await connection.query('SET SESSION innodb_lock_wait_timeout = 1');
      return connection;
    },
  };
  return {
    ...harness,
    impatientStore: mysqlStore(impatientPool, { table: TABLES.table }),
    close: async () => {
      await harness.close();
      await pool.end();
    },
  } as MessageEngine<unknown>;
}

async function postgresEngine(): Promise<MessageEngine<unknown>> {
  const harness = await postgresHarness(TABLES);
  const impatientPool = postgresPool({ options: '-c lock_timeout=300' });
  return {
    ...harness,
    impatientStore: postgresStore(impatientPool, { table: TABLES.table }),
    close: async () => {
      await harness.close();
      await impatientPool.end();
    },
  } as MessageEngine<unknown>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Settles to a tagged value, so a test can look at a promise without awaiting it. */
function watch<T>(promise: Promise<T>) {
  const state: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  void promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

function describeCheckBack<Tx>(name: string, skip: boolean, open: () => Promise<MessageEngine<Tx>>) {
  describe.skipIf(skip)(`check-back: ${name}`, () => {
    let engine: MessageEngine<Tx>;
    // PGlite boots its WebAssembly build first: seconds, more on a loaded machine.
    beforeAll(async () => {
      engine = await open();
    }, 90_000);
    afterAll(async () => {
      await engine?.close();
    });
    const gidOf = () => `msg-${randomUUID()}`;

    /** Starts the message's local transaction and holds it open, inside `fn`, until `end` is called. */
    async function holdLocalTransaction(gid: string) {
      let end!: (outcome: 'commit' | 'rollback') => void;
      const decided = new Promise<'commit' | 'rollback'>((resolve) => (end = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const local = Barrier.forMessage(gid).call(engine.store, async (tx) => {
        await engine.record(tx, gid, 'msg');
        entered();
        if ((await decided) === 'rollback') throw new Error('local transaction failed');
        return 'sent';
      });
      // If the local transaction fails before it holds, fail the test now rather than time out.
      await Promise.race([inside, local]);
      return { local, end };
    }

    it('waits for the open local transaction and answers committed once it commits', async () => {
      const gid = gidOf();
      const { local, end } = await holdLocalTransaction(gid);
      const check = watch(Barrier.forMessage(gid).queryPrepared(engine.store));
      await sleep(200);
      expect(check.settled).toBe(false);
      end('commit');
      expect(await local).toEqual({ outcome: 'applied', value: 'sent' });
      await expect.poll(() => check.settled).toBe(true);
      expect(check.error).toBeUndefined();
      expect(check.value).toBe('committed');
      expect(await engine.notes(gid)).toEqual(['msg']);
    });

    it('waits for the open local transaction and answers rolledback once it rolls back; the retry is refused', async () => {
      const gid = gidOf();
      const { local, end } = await holdLocalTransaction(gid);
      const check = watch(Barrier.forMessage(gid).queryPrepared(engine.store));
      await sleep(200);
      expect(check.settled).toBe(false);
      end('rollback');
      await expect(local).rejects.toThrow('local transaction failed');
      await expect.poll(() => check.settled).toBe(true);
      expect(check.value).toBe('rolledback');
      // The check-back's row now stands for the rollback: the coordinator's decision cannot be undone by a late retry.
      const retry = Barrier.forMessage(gid).call(engine.store, (tx) => engine.record(tx, gid, 'retry'));
      await expect(retry).rejects.toBeInstanceOf(BarrierDuplicateMessage);
      await expect(retry).rejects.toMatchObject({ committed: false });
      expect(await engine.notes(gid)).toEqual([]);
    });

    // The servers' row lock can time out; SQLite's and PGlite's in-process queues just wait (busy files are covered in sqlite.test.ts).
    if (name !== 'sqlite' && name !== 'pglite') it('reports ongoing when the wait outlasts the lock timeout, and committed after the commit', async () => {
      const gid = gidOf();
      const { local, end } = await holdLocalTransaction(gid);
      const error = await Barrier.forMessage(gid)
        .queryPrepared(engine.impatientStore!)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BarrierOngoing);
      expect((error as BarrierOngoing).cause).toBeDefined();
      end('commit');
      expect((await local).outcome).toBe('applied');
      expect(await Barrier.forMessage(gid).queryPrepared(engine.impatientStore!)).toBe('committed');
    });

    it('never answers rolledback for a local transaction that commits, however the two interleave', async () => {
      const rounds = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const gid = gidOf();
          const local = Barrier.forMessage(gid)
            .call(engine.store, async (tx) => {
              await engine.record(tx, gid, 'msg');
              await sleep(i % 4);
            })
            .then(
              () => 'committed' as const,
              (error: unknown) => {
                if (error instanceof BarrierDuplicateMessage && !error.committed) return 'refused' as const;
                throw error;
              },
            );
          await sleep(i % 3);
          const check = await Barrier.forMessage(gid).queryPrepared(engine.store);
          return { local: await local, check, notes: (await engine.notes(gid)).length };
        }),
      );
      for (const round of rounds) {
        if (round.local === 'committed') expect(round).toEqual({ local: 'committed', check: 'committed', notes: 1 });
        else expect(round).toEqual({ local: 'refused', check: 'rolledback', notes: 0 });
      }
    });
  });
}

if (testsEngine('sqlite')) describeCheckBack('sqlite', false, sqliteHarness);
// PostgreSQL in WebAssembly, one connection: the check-back queues behind the open local transaction.
if (testsEngine('pglite')) describeCheckBack('pglite', false, () => pgliteHarness());
if (testsEngine('mysql')) describeCheckBack('mysql', !hasServer('mysql'), mysqlEngine);
if (testsEngine('postgres')) describeCheckBack('postgres', !hasServer('postgres'), postgresEngine);
