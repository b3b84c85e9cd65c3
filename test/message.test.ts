/**
 * The coordinator's check-back for a 2-phase message, raced against the message's local
 * transaction on every engine: it must wait for (or report ongoing) a transaction still open,
 * and never answer `rolledback` for one that then commits.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlStore } from '../adapters/mysql.js';
import { postgresStore } from '../adapters/postgres.js';
import { sqliteStore } from '../adapters/sqlite.js';
import { Barrier, BarrierDuplicateMessage, BarrierOngoing, type BarrierStore } from '../src/index.js';
import { hasServer, MYSQL_URL, POSTGRES_URL } from './servers.js';
import { openTempDb } from './sqlite-harness.js';

const TABLE = 'msg_test_barrier';
const NOTES = 'msg_test_notes';

interface MessageEngine<Tx> {
  store: BarrierStore<Tx>;
  /** A store whose check-back gives up after a short lock wait (servers only). */
  impatientStore?: BarrierStore<Tx>;
  record(tx: Tx, gid: string): Promise<void>;
  notes(gid: string): Promise<number>;
  close(): Promise<void>;
}

async function sqliteEngine(): Promise<MessageEngine<ReturnType<typeof openTempDb>['db']>> {
  const { db, dir } = openTempDb();
  db.exec(`CREATE TABLE ${NOTES} (gid TEXT NOT NULL)`);
  const store = sqliteStore(db, { table: TABLE });
  await store.ensureSchema();
  return {
    store,
    record: async (tx, gid) => void tx.prepare(`INSERT INTO ${NOTES} VALUES (?)`).run(gid),
    notes: async (gid) => (db.prepare(`SELECT count(*) AS n FROM ${NOTES} WHERE gid = ?`).get(gid) as { n: number }).n,
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function mysqlEngine(): Promise<MessageEngine<mysql.PoolConnection>> {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 20 });
  await pool.query(`CREATE TABLE IF NOT EXISTS ${NOTES} (gid VARCHAR(128) NOT NULL)`);
  const store = mysqlStore(pool, { table: TABLE });
  await store.ensureSchema();
  // innodb_lock_wait_timeout is whole seconds; 1 is the least.
  const impatientPool = {
    async getConnection() {
      const connection = await pool.getConnection();
      await connection.query('SET SESSION innodb_lock_wait_timeout = 1');
      return connection;
    },
  };
  return {
    store,
    impatientStore: mysqlStore(impatientPool, { table: TABLE }),
    record: async (tx, gid) => void (await tx.query(`INSERT INTO ${NOTES} VALUES (?)`, [gid])),
    notes: async (gid) => {
      const [rows] = await pool.query(`SELECT count(*) AS n FROM ${NOTES} WHERE gid = ?`, [gid]);
      return Number((rows as { n: number }[])[0]!.n);
    },
    close: () => pool.end(),
  };
}

async function postgresEngine(): Promise<MessageEngine<pg.PoolClient>> {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 20 });
  const impatientPool = new pg.Pool({ connectionString: POSTGRES_URL, max: 5, options: '-c lock_timeout=300' });
  await pool.query(`CREATE TABLE IF NOT EXISTS ${NOTES} (gid VARCHAR(128) NOT NULL)`);
  const store = postgresStore(pool, { table: TABLE });
  await store.ensureSchema();
  return {
    store,
    impatientStore: postgresStore(impatientPool, { table: TABLE }),
    record: async (tx, gid) => void (await tx.query(`INSERT INTO ${NOTES} VALUES ($1)`, [gid])),
    notes: async (gid) => Number((await pool.query(`SELECT count(*) AS n FROM ${NOTES} WHERE gid = $1`, [gid])).rows[0].n),
    close: async () => {
      await pool.end();
      await impatientPool.end();
    },
  };
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
    beforeAll(async () => {
      engine = await open();
    });
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
        await engine.record(tx, gid);
        entered();
        if ((await decided) === 'rollback') throw new Error('local transaction failed');
        return 'sent';
      });
      await inside;
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
      expect(await engine.notes(gid)).toBe(1);
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
      const retry = Barrier.forMessage(gid).call(engine.store, (tx) => engine.record(tx, gid));
      await expect(retry).rejects.toBeInstanceOf(BarrierDuplicateMessage);
      await expect(retry).rejects.toMatchObject({ committed: false });
      expect(await engine.notes(gid)).toBe(0);
    });

    // The servers' row lock can time out; SQLite's in-process queue just waits (busy files are covered in sqlite.test.ts).
    if (name !== 'sqlite') it('reports ongoing when the wait outlasts the lock timeout, and committed after the commit', async () => {
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
              await engine.record(tx, gid);
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
          return { local: await local, check, notes: await engine.notes(gid) };
        }),
      );
      for (const round of rounds) {
        if (round.local === 'committed') expect(round).toEqual({ local: 'committed', check: 'committed', notes: 1 });
        else expect(round).toEqual({ local: 'refused', check: 'rolledback', notes: 0 });
      }
    });
  });
}

describeCheckBack('sqlite', false, sqliteEngine);
describeCheckBack('mysql', !hasServer('mysql'), mysqlEngine);
describeCheckBack('postgres', !hasServer('postgres'), postgresEngine);
