/**
 * What the cost workers share, and none of it txbarrier: the raw driver connection, the business
 * statement, the unmeasured preload of the actions a compensation undoes, the client loops, and the
 * per-thread CPU reading. `worker-hand.ts` and `worker-sdk.ts` each add one way of running the barrier.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

export type WorkerEngine = 'sqlite' | 'mysql' | 'postgres';
export type WorkerOp = 'action' | 'compensate';

/** What a worker needs to reach the database: the engine, its URL or SQLite file, and the accounts table. */
export interface ConnectArgs {
  engine: WorkerEngine;
  /** Server URL, or the SQLite file. */
  target: string;
  /** The accounts table the business UPDATE hits. */
  accounts: string;
}

/** A cost worker's setup, as the parent passes it (JSON in argv[2]); the rounds then come over IPC. */
export interface WorkerArgs extends ConnectArgs {
  clients: number;
  /** The barrier table (already created by the parent). */
  table: string;
  accountCount: number;
  /** Warm-up of each op's client loops: at least this long and at least this many ops, unmeasured. */
  warmSeconds: number;
  warmOps: number;
  /**
   * On a machine too slow for `warmOps` in reasonable time: stop after this long once past
   * `warmMinOps` (beyond the 1,000–3,000 calls after which V8 optimises the SDK's functions).
   */
  warmMaxSeconds?: number;
  warmMinOps?: number;
  /** Target length of one measured round; its op count comes from the loops' last rate. */
  roundSeconds: number;
  /** Ops per measured round instead (smoke runs). */
  fixedOps?: number;
}

/** Which barrier op a worker runs, on which table. */
export interface OpArgs {
  table: string;
  op: WorkerOp;
}

/** What the parent asks of a worker over IPC; the worker answers `warm` and `round` with a WorkerResult. */
export type WorkerCommand = { type: 'warm' | 'round'; op: WorkerOp } | { type: 'exit' };

/** CPU time of the process's threads, µs, from /proc/self/task/<tid>/schedstat (exact, not tick-sampled). */
export interface ThreadCpu {
  /** The JavaScript thread. */
  main: number;
  /** Every other thread: V8's compiler and GC helpers, libuv's pool (better-sqlite3 does not use it; DNS, fs would). */
  background: number;
}

export interface WorkerResult {
  ops: number;
  seconds: number;
  /** Per-thread CPU over the measured ops, µs (`main + background` = the process's CPU). */
  mainMicros: number;
  backgroundMicros: number;
  /** Database conflicts met and retried in the measured ops. */
  conflicts: number;
}

/** The raw driver as both workers use it: the SDK takes `handle` for its store, the hand-written code uses all of it. */
export type Driver =
  | { engine: 'sqlite'; handle: import('better-sqlite3').Database; update: (tx: unknown, account: number, amount: number) => void; close(): Promise<void> }
  | { engine: 'mysql'; handle: import('mysql2/promise').Pool; update: (tx: unknown, account: number, amount: number) => Promise<unknown>; close(): Promise<void> }
  | { engine: 'postgres'; handle: import('pg').Pool; update: (tx: unknown, account: number, amount: number) => Promise<unknown>; close(): Promise<void> };

/** Pools of 16, as the benchmark's other sections use; SQLite one connection, WAL, synchronous=FULL. */
export async function connect(args: ConnectArgs): Promise<Driver> {
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
      // Idle connections stay open: a cost worker waits while the others run, and must not reconnect in its round.
      const pool = mysql.createPool({ uri: args.target, connectionLimit: 16, idleTimeout: 3_600_000 });
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
      const pool = new pg.Pool({ connectionString: args.target, max: 16, idleTimeoutMillis: 0 });
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

/** CPU of each of this process's threads so far, µs by thread id. Threads that exited are gone from the list. */
export function threadTimes(): Map<string, number> {
  const times = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      // schedstat: ns on the CPU, ns waiting on a run queue, timeslices.
      times.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000);
    } catch {
      // The thread exited between the listing and the read: its time is no longer anyone's.
    }
  }
  return times;
}

/** Main-thread and background-thread CPU since `before` (a threadTimes() reading). */
export function threadCpuSince(before: Map<string, number>): ThreadCpu {
  const main = String(process.pid);
  const cpu: ThreadCpu = { main: 0, background: 0 };
  for (const [tid, micros] of threadTimes()) {
    const used = micros - (before.get(tid) ?? 0);
    if (tid === main) cpu.main += used;
    else cpu.background += used;
  }
  return cpu;
}

/**
 * A benchmark server's side of the CPU reading (bench/fronts.ts `startServer`): over IPC, `mark`
 * starts a reading and `cpu` answers the per-thread CPU since. And on SIGTERM: requests still in
 * flight (a load generator stops mid-request) finish, then the pool closes and the process exits.
 */
export function serveBenchmark(server: import('node:http').Server, driver: Driver): void {
  let mark = threadTimes();
  process.on('message', (message: 'mark' | 'cpu') => {
    if (message === 'mark') mark = threadTimes();
    process.send!(message === 'mark' ? 'marked' : threadCpuSince(mark));
  });
  process.once('SIGTERM', () => {
    server.close(() => void driver.close().finally(() => process.exit(0)));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2000).unref();
  });
}

/**
 * One op's client loops, made once and kept for the worker's life: warm-up and measured rounds go
 * through the same closures, so V8's optimised code for them is the code that is measured (a new
 * closure at a window's start deoptimises on "wrong call target" and recompiles in the window).
 * Between runs the loops wait on a gate.
 */
class ClientLoops {
  private gids: string[] = [];
  private accounts: number[] = [];
  private next = 0;
  private end = 0;
  private conflicts = 0;
  private waiting = 0;
  private open: () => void = () => {};
  private gate!: Promise<void>;
  private allWaiting: () => void = () => {};
  private failure: unknown;

  constructor(
    private readonly op: Op,
    private readonly clients: number,
    private readonly amount: number,
  ) {
    this.closeGate();
    for (let client = 0; client < clients; client++) void this.loop();
  }

  private closeGate() {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.next >= this.end) {
        if (++this.waiting === this.clients) this.allWaiting();
        await this.gate;
        this.waiting--;
        continue;
      }
      const index = this.next++;
      try {
        while (await this.op(this.gids[index]!, this.accounts[index]!, this.amount)) this.conflicts++;
      } catch (error) {
        this.failure ??= error;
        this.end = this.next;
      }
    }
  }

  /** Runs the given ops over the client loops; resolves to the conflicts they retried. */
  async run(gids: string[], accounts: number[]): Promise<number> {
    this.gids = gids;
    this.accounts = accounts;
    this.next = 0;
    this.end = gids.length;
    this.conflicts = 0;
    const done = new Promise<void>((resolve) => (this.allWaiting = resolve));
    const open = this.open;
    this.closeGate();
    open();
    await done;
    if (this.failure !== undefined) throw this.failure;
    return this.conflicts;
  }
}

/** Writes a CPU profile of `run` (bench/profile.ts sets the file): the measured round only, not the warm-up. */
export async function profiled<T>(file: string, run: () => Promise<T>): Promise<T> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  const result = await run();
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
  return result;
}

/**
 * A cost worker: connects, makes each op's client loops once, then answers the parent's commands:
 * `warm` runs an op unmeasured until both `warmSeconds` and `warmOps` are reached, `round` runs one
 * measured round of about `roundSeconds` (sized from that op's last rate; compensations get their
 * actions committed first, unmeasured) and reports its time and per-thread CPU. `makeOp` is the
 * only thing the workers do differently.
 */
export async function workerMain(makeOp: (driver: Driver, args: OpArgs) => Op | Promise<Op>): Promise<void> {
  const args = JSON.parse(process.argv[2]!) as WorkerArgs;
  const driver = await connect(args);
  const loops = {} as Record<WorkerOp, ClientLoops>;
  const rate = {} as Record<WorkerOp, number>;
  for (const op of ['action', 'compensate'] as const) {
    loops[op] = new ClientLoops(await makeOp(driver, { table: args.table, op }), args.clients, op === 'action' ? 1 : -1);
  }
  const prepare = async (op: WorkerOp, ops: number) => {
    const gids = Array.from({ length: ops }, () => randomUUID());
    const accounts = Array.from({ length: ops }, () => 1 + Math.floor(Math.random() * args.accountCount));
    if (op === 'compensate') await preloadActions(driver, args.table, gids);
    return [gids, accounts] as const;
  };
  const timed = async (op: WorkerOp, ops: number): Promise<WorkerResult> => {
    const [gids, accounts] = await prepare(op, ops);
    const before = threadTimes();
    const start = performance.now();
    const conflicts = await loops[op].run(gids, accounts);
    const seconds = (performance.now() - start) / 1000;
    const cpu = threadCpuSince(before);
    rate[op] = ops / seconds;
    return { ops, seconds, mainMicros: cpu.main, backgroundMicros: cpu.background, conflicts };
  };
  const sizeFor = (op: WorkerOp, seconds: number) => Math.max(args.clients * 10, Math.round((rate[op] ?? 0) * seconds));
  process.on('message', async (command: WorkerCommand) => {
    try {
      if (command.type === 'exit') {
        await driver.close();
        process.disconnect();
        return;
      }
      const { op } = command;
      if (command.type === 'warm') {
        // Chunks of about a second each, the first small: the rate is not known yet.
        const total: WorkerResult = { ops: 0, seconds: 0, mainMicros: 0, backgroundMicros: 0, conflicts: 0 };
        let chunk = Math.max(args.clients * 20, Math.min(args.warmOps, 500));
        const capped = () => total.seconds >= (args.warmMaxSeconds ?? Infinity) && total.ops >= (args.warmMinOps ?? 0);
        while ((total.ops < args.warmOps || total.seconds < args.warmSeconds) && !capped()) {
          const result = await timed(op, chunk);
          for (const key of ['ops', 'seconds', 'mainMicros', 'backgroundMicros', 'conflicts'] as const) total[key] += result[key];
          const wanted = Math.max(args.warmOps - total.ops, Math.round(rate[op]! * (args.warmSeconds - total.seconds)));
          chunk = Math.min(sizeFor(op, 1), Math.max(args.clients, wanted));
        }
        process.send!(total);
        return;
      }
      const ops = args.fixedOps ?? sizeFor(op, args.roundSeconds);
      const profile = process.env.TXBARRIER_BENCH_PROFILE;
      process.send!(profile ? await profiled(profile, () => timed(op, ops)) : await timed(op, ops));
    } catch (error) {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    }
  });
  process.send!('ready');
}
