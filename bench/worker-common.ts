/**
 * What both cost workers share, and none of it txbarrier: the raw driver connection, the business
 * statement, the unmeasured preload of the actions a compensation undoes, and the timed loop with
 * its CPU reading. `worker-hand.ts` and `worker-sdk.ts` each add one way of running the barrier.
 */
import { randomUUID } from 'node:crypto';

export type WorkerEngine = 'sqlite' | 'mysql' | 'postgres';
export type WorkerOp = 'action' | 'compensate';

/** One round of one variant, as the parent passes it (JSON in argv[2]). */
export interface WorkerArgs {
  engine: WorkerEngine;
  op: WorkerOp;
  clients: number;
  /** Measured operations, after `warmOps` unmeasured ones. */
  ops: number;
  warmOps: number;
  /** The barrier table (already created by the parent) and the accounts table the business UPDATE hits. */
  table: string;
  accounts: string;
  accountCount: number;
  /** Server URL, or the SQLite file. */
  target: string;
}

export interface WorkerResult {
  ops: number;
  seconds: number;
  /** `process.cpuUsage()` over the measured operations, µs. */
  userMicros: number;
  systemMicros: number;
  /** Database conflicts met and retried in the measured operations. */
  conflicts: number;
}

/** The raw driver as both workers use it: the SDK takes `handle` for its store, the hand-written code uses all of it. */
export type Driver =
  | { engine: 'sqlite'; handle: import('better-sqlite3').Database; update: (tx: unknown, account: number, amount: number) => void; close(): Promise<void> }
  | { engine: 'mysql'; handle: import('mysql2/promise').Pool; update: (tx: unknown, account: number, amount: number) => Promise<unknown>; close(): Promise<void> }
  | { engine: 'postgres'; handle: import('pg').Pool; update: (tx: unknown, account: number, amount: number) => Promise<unknown>; close(): Promise<void> };

/** Pools of 16, as the benchmark's other sections use; SQLite one connection, WAL, synchronous=FULL. */
export async function connect(args: WorkerArgs): Promise<Driver> {
  switch (args.engine) {
    case 'sqlite': {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(args.target);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      const update = db.prepare(`UPDATE "${args.accounts}" SET balance = balance + ? WHERE id = ?`);
      return { engine: 'sqlite', handle: db, update: (_tx, account, amount) => void update.run(amount, account), close: async () => void db.close() };
    }
    case 'mysql': {
      const { default: mysql } = await import('mysql2/promise');
      const pool = mysql.createPool({ uri: args.target, connectionLimit: 16 });
      const update = `UPDATE \`${args.accounts}\` SET balance = balance + ? WHERE id = ?`;
      return {
        engine: 'mysql',
        handle: pool,
        update: (tx, account, amount) => (tx as import('mysql2/promise').PoolConnection).query(update, [amount, account]),
        close: () => pool.end(),
      };
    }
    case 'postgres': {
      const { default: pg } = await import('pg');
      const pool = new pg.Pool({ connectionString: args.target, max: 16 });
      const update = `UPDATE "${args.accounts}" SET balance = balance + $1 WHERE id = $2`;
      return {
        engine: 'postgres',
        handle: pool,
        update: (tx, account, amount) => (tx as import('pg').PoolClient).query(update, [amount, account]),
        close: () => pool.end(),
      };
    }
  }
}

const COLUMNS = '(trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time)';

/** Commits the actions that the compensations will undo (not measured): one row per gid, as the SDK writes it. */
async function preloadActions(driver: Driver, table: string, gids: string[]): Promise<void> {
  const CHUNK = 2000;
  for (let start = 0; start < gids.length; start += CHUNK) {
    const chunk = gids.slice(start, start + CHUNK);
    switch (driver.engine) {
      case 'sqlite': {
        const insert = driver.handle.prepare(`INSERT INTO "${table}" ${COLUMNS} VALUES ('saga', ?, '01', 'action', '01', 'action', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`);
        driver.handle.transaction(() => {
          for (const gid of chunk) insert.run(gid);
        })();
        break;
      }
      case 'mysql':
        await driver.handle.query(`INSERT INTO \`${table}\` ${COLUMNS} VALUES ?`, [
          chunk.map((gid) => ['saga', gid, '01', 'action', '01', 'action', new Date(), new Date()]),
        ]);
        break;
      case 'postgres':
        await driver.handle.query(
          `INSERT INTO "${table}" ${COLUMNS} SELECT 'saga', g, '01', 'action', '01', 'action', now(), now() FROM unnest($1::text[]) g`,
          [chunk],
        );
        break;
    }
  }
}

/** One barrier-protected op; resolves to true if it met a database conflict and must be retried. */
export type Op = (gid: string, account: number, amount: number) => Promise<boolean>;

async function runOps(op: Op, clients: number, gids: string[], accounts: number[], amount: number, from: number, to: number): Promise<number> {
  let next = from;
  let conflicts = 0;
  await Promise.all(
    Array.from({ length: Math.min(clients, to - from) }, async () => {
      while (next < to) {
        const index = next++;
        while (await op(gids[index]!, accounts[index]!, amount)) conflicts++;
      }
    }),
  );
  return conflicts;
}

/**
 * Reads the arguments, connects, prepares every gid and account up front (compensations: their
 * actions committed first), runs the warm-up and then the measured ops, and prints the result as
 * one JSON line. `makeOp` is the only thing the two workers do differently.
 */
export async function workerMain(makeOp: (driver: Driver, args: WorkerArgs) => Op | Promise<Op>): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as WorkerArgs;
  const driver = await connect(args);
  try {
    const total = args.warmOps + args.ops;
    const gids = Array.from({ length: total }, () => randomUUID());
    const accounts = Array.from({ length: total }, () => 1 + Math.floor(Math.random() * args.accountCount));
    if (args.op === 'compensate') await preloadActions(driver, args.table, gids);
    const op = await makeOp(driver, args);
    const amount = args.op === 'action' ? 1 : -1;
    await runOps(op, args.clients, gids, accounts, amount, 0, args.warmOps);
    const cpu = process.cpuUsage();
    const start = performance.now();
    const conflicts = await runOps(op, args.clients, gids, accounts, amount, args.warmOps, total);
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    const result: WorkerResult = { ops: args.ops, seconds, userMicros: used.user, systemMicros: used.system, conflicts };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await driver.close();
  }
}
