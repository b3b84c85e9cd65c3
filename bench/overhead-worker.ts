/**
 * The SDK's own CPU per call, apart from any I/O: the same forward op through the SDK
 * (bench/sdk-barrier.ts, the real adapters) and hand-written (bench/hand-barrier.ts), on drivers
 * that answer at once: pg and mysql2 stand-ins that resolve every query with what the server would
 * send for a first delivery, and a real better-sqlite3 database in memory (no file, no fsync).
 * The difference is what txbarrier itself costs on each call. Rounds alternate; the median counts.
 *
 *   node overhead.mjs <calls per round>   → one line of OverheadResult[] JSON
 */
import { randomUUID } from 'node:crypto';
import { handOp } from './hand-barrier.js';
import { sdkOp } from './sdk-barrier.js';
import type { Driver, Op } from './worker-common.js';

export interface OverheadResult {
  engine: Driver['engine'];
  /** Median µs of CPU per forward call over the rounds. */
  sdkMicros: number;
  handMicros: number;
}

const calls = Number(process.argv[2] ?? 100_000);
const ROUNDS = 5;
const TABLE = 'barrier';

function pgStandIn(): Driver {
  const inserted = { command: 'INSERT', rowCount: 1, rows: [] };
  const committed = { command: 'COMMIT', rowCount: null, rows: [] };
  const client = { query: async (sql: string) => (sql === 'COMMIT' ? committed : inserted), release() {}, on() {} };
  const pool = { connect: async () => client };
  return { engine: 'postgres', handle: pool as never, update: async () => inserted, close: async () => {} };
}

function mysqlStandIn(): Driver {
  // serverStatus 3: autocommit off and in a transaction, as after START TRANSACTION.
  const ok = [{ affectedRows: 1, serverStatus: 3 }, undefined];
  const connection = { query: async () => ok, release() {}, destroy() {}, connection: {} };
  const pool = { getConnection: async () => connection };
  return { engine: 'mysql', handle: pool as never, update: async () => ok, close: async () => {} };
}

async function sqliteInMemory(): Promise<Driver> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(':memory:');
  db.exec(`CREATE TABLE "${TABLE}" (trans_type TEXT NOT NULL DEFAULT '', gid TEXT NOT NULL, branch_id TEXT NOT NULL, op TEXT NOT NULL,
    barrier_id TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', create_time TEXT NOT NULL, update_time TEXT NOT NULL,
    PRIMARY KEY (gid, branch_id, op, barrier_id)) WITHOUT ROWID;
    CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL); INSERT INTO accounts VALUES (1, 0)`);
  const update = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
  return { engine: 'sqlite', handle: db, update: (_tx, account, amount) => void update.run(amount, account), close: async () => void db.close() };
}

async function microsPerCall(op: Op, gids: string[]): Promise<number> {
  const cpu = process.cpuUsage();
  for (const gid of gids) if (await op(gid, 1, 1)) throw new Error('a stand-in driver reported a conflict');
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / gids.length;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

const results: OverheadResult[] = [];
for (const driver of [await sqliteInMemory(), mysqlStandIn(), pgStandIn()]) {
  const ops = { sdk: sdkOp(driver, { table: TABLE, op: 'action' }), hand: handOp(driver, { table: TABLE, op: 'action' }) };
  const micros: Record<'sdk' | 'hand', number[]> = { sdk: [], hand: [] };
  // A fresh gid for every call, warm-up included: SQLite really inserts.
  const fresh = () => Array.from({ length: calls }, () => randomUUID());
  for (const variant of ['sdk', 'hand'] as const) await microsPerCall(ops[variant], fresh());
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of round % 2 === 0 ? (['sdk', 'hand'] as const) : (['hand', 'sdk'] as const)) {
      micros[variant].push(await microsPerCall(ops[variant], fresh()));
    }
  }
  results.push({ engine: driver.engine, sdkMicros: median(micros.sdk), handMicros: median(micros.hand) });
  await driver.close();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
