/**
 * The three engines as the idempotency tests use them: a store, a business table `ledger` the
 * handlers write in the store's transaction, and a way to count its rows and the key rows.
 * Table names are random per run, so parallel runs never share them.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mysqlStore } from '../adapters/stores/mysql.js';
import { postgresStore } from '../adapters/stores/postgres.js';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import { ensureIdempotencySchema } from '../src/idempotency/guard.js';
import type { BarrierStore } from '../src/index.js';
import { mysqlPool, postgresPool } from './server-harness.js';
import { hasServer } from './servers.js';
import { openTempDb } from './sqlite-harness.js';
import { MYSQL_URL, POSTGRES_URL } from '../servers/index.js';

export type EngineName = 'sqlite' | 'mysql' | 'postgres';

export interface EngineHarness {
  engine: EngineName;
  store: BarrierStore<any>;
  /** The key table. */
  table: string;
  /** Writes one ledger row inside the handler's transaction. */
  record(tx: any, note: string): Promise<void>;
  /** How many ledger rows carry `note`. */
  ledger(note: string): Promise<number>;
  /** How many key rows there are for `key` (any scope). */
  keyRows(key: string): Promise<number>;
  /** What a child process needs to open the same store: a URL or file, and the tables. */
  location: { url: string; table: string; ledger: string };
  close(): Promise<void>;
}

/** Engines reachable here; SQLite always. Use with `describe.each(ENGINES)`. */
export const ENGINES: EngineName[] = ['sqlite', ...(['mysql', 'postgres'] as const).filter((engine) => hasServer(engine))];

export async function openEngine(engine: EngineName, options: { connections?: number } = {}): Promise<EngineHarness> {
  const suffix = randomUUID().slice(0, 8);
  const table = `idem_key_${suffix}`;
  const ledgerTable = `idem_ledger_${suffix}`;
  if (engine === 'sqlite') {
    const { db, file, dir } = openTempDb();
    db.exec(`CREATE TABLE ${ledgerTable} (seq INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL)`);
    const store = sqliteStore(db);
    await ensureIdempotencySchema(store, { table });
    const count = (sql: string, value: string) => (db.prepare(sql).get(value) as { n: number }).n;
    return {
      engine,
      store,
      table,
      record: async (tx, note) => void tx.prepare(`INSERT INTO ${ledgerTable} (note) VALUES (?)`).run(note),
      ledger: async (note) => count(`SELECT COUNT(*) AS n FROM ${ledgerTable} WHERE note = ?`, note),
      keyRows: async (key) => count(`SELECT COUNT(*) AS n FROM ${table} WHERE idem_key = ?`, key),
      location: { url: `sqlite:${file}`, table, ledger: ledgerTable },
      close: async () => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (engine === 'mysql') {
    const pool = mysqlPool({ connectionLimit: options.connections ?? 8 });
    const store = mysqlStore(pool);
    await ensureIdempotencySchema(store, { table });
    await pool.query(`CREATE TABLE ${ledgerTable} (seq BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200) NOT NULL)`);
    const count = async (sql: string, value: string) => Number(((await pool.query(sql, [value]))[0] as { n: number }[])[0]!.n);
    return {
      engine,
      store,
      table,
      record: async (tx, note) => void (await tx.query(`INSERT INTO ${ledgerTable} (note) VALUES (?)`, [note])),
      ledger: (note) => count(`SELECT COUNT(*) AS n FROM ${ledgerTable} WHERE note = ?`, note),
      keyRows: (key) => count(`SELECT COUNT(*) AS n FROM ${table} WHERE idem_key = ?`, key),
      location: { url: MYSQL_URL, table, ledger: ledgerTable },
      close: async () => {
        await pool.query(`DROP TABLE IF EXISTS ${table}, ${ledgerTable}`);
        await pool.end();
      },
    };
  }
  const pool = postgresPool({ max: options.connections ?? 8 });
  const store = postgresStore(pool);
  await ensureIdempotencySchema(store, { table });
  await pool.query(`CREATE TABLE ${ledgerTable} (seq BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)`);
  const count = async (sql: string, value: string) => (await pool.query(sql, [value])).rows[0].n as number;
  return {
    engine,
    store,
    table,
    record: async (tx, note) => void (await tx.query(`INSERT INTO ${ledgerTable} (note) VALUES ($1)`, [note])),
    ledger: (note) => count(`SELECT COUNT(*)::int AS n FROM ${ledgerTable} WHERE note = $1`, note),
    keyRows: (key) => count(`SELECT COUNT(*)::int AS n FROM ${table} WHERE idem_key = $1`, key),
    location: { url: POSTGRES_URL, table, ledger: ledgerTable },
    close: async () => {
      await pool.query(`DROP TABLE IF EXISTS ${table}, ${ledgerTable}`);
      await pool.end();
    },
  };
}

/** A fresh key, quoted as the header carries it. */
export function newKey(): { key: string; header: string } {
  const key = randomUUID();
  return { key, header: `"${key}"` };
}

export interface Answer {
  status: number;
  text: string;
  headers: Headers;
  json: any;
}

/** One POST with a JSON body, an optional key header and a client identity (`x-client`, standing in for authentication). */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-client': 'alice', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, headers: response.headers, json };
}
