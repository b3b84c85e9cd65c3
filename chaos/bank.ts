/**
 * The business under test in `npm run chaos` and the DTM suite: a transfer between accounts in one
 * database. Branch 01 debits `from`, branch 02 credits `to`; each applied op writes a ledger row in
 * the same transaction, so the invariants read committed truth. As a TCC, `try` moves the money as
 * a saga's `action` does, `cancel` undoes it as `compensate` does, and `confirm` only records itself;
 * a workflow's `rollback` undoes its `action`.
 */
import { BarrierFailure, type BarrierStore } from '../src/index.js';
import { checkLedger, type LedgerEntry, type SagaResult, type Violation } from '../src/testing/index.js';
import type { PoolConnection as MysqlConnection } from 'mysql2/promise';
import type { PoolClient as PostgresClient } from 'pg';
import { type EngineName, MYSQL_URL, POSTGRES_URL } from '../servers/index.js';

/** Where one run's tables live; passed to the service process as JSON in `CHAOS_BANK`. */
export interface BankConfig {
  engine: EngineName;
  /** Prefix of this run's own tables (`<prefix>_account`, `_ledger`, `_barrier`), dropped at the end. */
  prefix: string;
  /** The database file, for SQLite. */
  sqliteFile?: string;
  /** The barrier table. Defaults to `<prefix>_barrier`. */
  barrierTable?: string;
}

export interface Transfer {
  from: number;
  to: number;
  amount: number;
}

/** One delivery as the handler sees it: a `Delivery` from the harness, or the same read from an HTTP request. */
export interface BranchWork {
  gid: string;
  branchId: string;
  op: string;
  payload: unknown;
  fault?: string | undefined;
}

export const ACCOUNTS = 20;
export const OPENING_BALANCE = 1000;
/** Credits to this account are refused: a business FAILURE that makes the saga compensate a committed debit. */
export const FROZEN_ACCOUNT = 0;

/** A transfer between two distinct accounts, drawn from the harness's seeded random. */
export function randomTransfer(random: () => number): Transfer {
  const from = Math.floor(random() * ACCOUNTS);
  const to = (from + 1 + Math.floor(random() * (ACCOUNTS - 1))) % ACCOUNTS;
  return { from, to, amount: 1 + Math.floor(random() * 200) };
}

/** The statements one engine needs, on the transaction object its store hands out. */
interface Engine {
  store: BarrierStore<unknown>;
  /** Runs a statement (`?` placeholders) in the barrier's transaction; resolves to the rows it changed. */
  execute(tx: unknown, sql: string, params: unknown[]): Promise<number>;
  /** Runs a statement outside any barrier. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Destroys the connection under `tx` from another connection, so its transaction can never commit. */
  killConnection?(tx: unknown): Promise<void>;
  /** The ledger's auto-increment key column. */
  serial: string;
  close(): Promise<void>;
}

export interface Bank {
  store: BarrierStore<unknown>;
  /** True when this engine can destroy a connection mid-transaction (not SQLite, whose stand-in is the process crash). */
  canKillTransactions: boolean;
  /** Creates this run's tables and opens the accounts. */
  create(): Promise<void>;
  /**
   * The business work of one delivery, inside the transaction `tx`. `fault`: `kill-transaction`
   * destroys the connection after the work; `crash` SIGKILLs this process there (a service dying
   * mid-branch, its work uncommitted).
   */
  apply(tx: unknown, work: BranchWork): Promise<void>;
  /** The saga invariants from the ledger (a TCC's `try`/`cancel` read as `action`/`compensate`, `confirm` checked apart), and money conservation from the balances. */
  check(sagas: SagaResult[]): Promise<Violation[]>;
  /** Runs a statement (`?` placeholders) outside any barrier; resolves to its rows. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Drops this run's tables. */
  drop(): Promise<void>;
  close(): Promise<void>;
}

/** A TCC's and a workflow's ops as the saga invariants read them: `try` moves the money as `action` does, `cancel` and `rollback` undo it. */
const AS_SAGA_OP: Record<string, LedgerEntry['op']> = { try: 'action', cancel: 'compensate', rollback: 'compensate' };

export async function openBank(config: BankConfig): Promise<Bank> {
  const engine = await openEngine(config);
  const { prefix } = config;
  const [account, ledger] = [`${prefix}_account`, `${prefix}_ledger`];

  return {
    store: engine.store,
    canKillTransactions: engine.killConnection !== undefined,

    async create() {
      await engine.store.ensureSchema();
      await engine.query(`CREATE TABLE ${account} (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)`);
      await engine.query(
        `CREATE TABLE ${ledger} (seq ${engine.serial}, gid VARCHAR(128) NOT NULL, branch_id VARCHAR(16) NOT NULL, ` +
          `op VARCHAR(16) NOT NULL, account INTEGER NOT NULL, amount BIGINT NOT NULL)`,
      );
      const rows = Array.from({ length: ACCOUNTS }, (_, id) => `(${id}, ${OPENING_BALANCE})`).join(', ');
      await engine.query(`INSERT INTO ${account} (id, balance) VALUES ${rows}`);
    },

    async apply(tx, { gid, branchId, op, payload, fault }) {
      const { from, to, amount } = payload as Transfer;
      const debit = branchId === '01';
      const accountId = debit ? from : to;
      const forward = op === 'action' || op === 'try';
      if (forward && !debit && to === FROZEN_ACCOUNT) throw new BarrierFailure(`account ${to} is frozen`);
      const delta = op === 'confirm' ? 0 : (debit ? -amount : amount) * (forward ? 1 : -1);
      // Only a debit checks funds, in the UPDATE itself so concurrent debits cannot both pass; a
      // compensation must succeed whatever happened since, even below zero.
      const checked = forward && debit;
      const changed = await engine.execute(
        tx,
        `UPDATE ${account} SET balance = balance + ? WHERE id = ?${checked ? ' AND balance + ? >= 0' : ''}`,
        checked ? [delta, accountId, delta] : [delta, accountId],
      );
      if (changed === 0) throw new BarrierFailure(`insufficient funds in account ${accountId}`);
      await engine.execute(tx, `INSERT INTO ${ledger} (gid, branch_id, op, account, amount) VALUES (?, ?, ?, ?, ?)`, [
        gid,
        branchId,
        op,
        accountId,
        delta,
      ]);
      if (fault === 'kill-transaction') await engine.killConnection?.(tx);
      if (fault === 'crash') process.kill(process.pid, 'SIGKILL');
    },

    async check(sagas) {
      const rows = await engine.query(`SELECT gid, branch_id, op, seq FROM ${ledger}`);
      const entries = rows
        .filter((row) => row.op !== 'confirm')
        .map(
          (row): LedgerEntry => ({
            gid: String(row.gid),
            branchId: String(row.branch_id),
            op: AS_SAGA_OP[String(row.op)] ?? (row.op as LedgerEntry['op']),
            seq: Number(row.seq),
          }),
        );
      const confirms: Violation[] = [];
      for (const saga of sagas) {
        for (const branchId of saga.branchIds) {
          const ops = rows.filter((row) => row.gid === saga.gid && row.branch_id === branchId).map((row) => String(row.op));
          const confirmed = ops.filter((op) => op === 'confirm').length;
          const problem = (text: string) => confirms.push({ gid: saga.gid, problem: `branch ${branchId}: ${text}` });
          if (confirmed > 1) problem(`confirm applied ${confirmed} times`);
          if (confirmed > 0 && !ops.includes('try')) problem('confirmed a try that never committed');
          if (confirmed > 0 && saga.status === 'compensated') problem('confirmed in a cancelled transaction');
          if (confirmed === 0 && ops.includes('try') && saga.status === 'succeeded') problem('confirmed transaction, branch never confirmed');
        }
      }
      const [{ total }] = (await engine.query(`SELECT SUM(balance) AS total FROM ${account}`)) as [{ total: unknown }];
      const expected = ACCOUNTS * OPENING_BALANCE;
      const money: Violation[] =
        Number(total) === expected ? [] : [{ problem: `money not conserved: the accounts hold ${total}, not ${expected}` }];
      return [...checkLedger(sagas, entries), ...confirms, ...money];
    },

    query: (sql, params) => engine.query(sql, params),

    async drop() {
      for (const table of [account, ledger, engine.store.table]) await engine.query(`DROP TABLE IF EXISTS ${table}`);
    },

    close: () => engine.close(),
  };
}

async function openEngine({ engine, prefix, sqliteFile, barrierTable }: BankConfig): Promise<Engine> {
  const table = barrierTable ?? `${prefix}_barrier`;
  if (engine === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const { sqliteStore } = await import('../adapters/stores/sqlite.js');
    const db = new Database(sqliteFile ?? ':memory:', { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    // NORMAL loses nothing when a process is killed (only on power loss), and SIGKILL is what this suite does.
    db.pragma('synchronous = NORMAL');
    const store = sqliteStore(db, { table });
    return {
      store: store as BarrierStore<unknown>,
      execute: async (tx, sql, params) => (tx as typeof db).prepare(sql).run(...params).changes,
      // Queued behind open barrier transactions: a statement run while one awaits would join it.
      query: (sql, params = []) =>
        store.exclusive((conn) => {
          const statement = conn.prepare(sql);
          return statement.reader ? (statement.all(...params) as Record<string, unknown>[]) : (statement.run(...params), []);
        }),
      serial: 'INTEGER PRIMARY KEY AUTOINCREMENT',
      close: async () => void db.close(),
    };
  }
  if (engine === 'mysql') {
    const mysql = await import('mysql2/promise');
    const { mysqlStore } = await import('../adapters/stores/mysql.js');
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 10 });
    const killer = await mysql.createConnection({ uri: MYSQL_URL });
    return {
      store: mysqlStore(pool, { table }) as BarrierStore<unknown>,
      execute: async (tx, sql, params) => ((await (tx as MysqlConnection).query(sql, params))[0] as { affectedRows: number }).affectedRows,
      query: async (sql, params = []) => {
        const [rows] = await pool.query(sql, params);
        return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
      },
      async killConnection(tx) {
        const [[row]] = (await (tx as MysqlConnection).query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
        await killer.query('KILL ?', [row.id]);
      },
      serial: 'BIGINT AUTO_INCREMENT PRIMARY KEY',
      close: async () => {
        await killer.end();
        await pool.end();
      },
    };
  }
  const { default: pg } = await import('pg');
  const { postgresStore } = await import('../adapters/stores/postgres.js');
  // Commits need not survive a crash of the database server, which this suite never kills; only
  // the handler process dies. Dropping the wait for the WAL flush keeps 10,000 sagas within minutes.
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 10, options: '-c synchronous_commit=off' });
  const killer = new pg.Client({ connectionString: POSTGRES_URL });
  await killer.connect();
  const numbered = (sql: string) => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  };
  return {
    store: postgresStore(pool, { table }) as BarrierStore<unknown>,
    execute: async (tx, sql, params) => (await (tx as PostgresClient).query(numbered(sql), params)).rowCount ?? 0,
    query: async (sql, params = []) => (await pool.query(numbered(sql), params)).rows,
    async killConnection(tx) {
      const { rows } = await (tx as PostgresClient).query('SELECT pg_backend_pid() AS pid');
      await killer.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
    },
    serial: 'BIGSERIAL PRIMARY KEY',
    close: async () => {
      await killer.end();
      await pool.end();
    },
  };
}
