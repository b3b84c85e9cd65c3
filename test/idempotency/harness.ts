/**
 * The three engines as the idempotency tests use them: a store, a business table `ledger` the
 * handlers write in the store's transaction, and a way to count its rows and the key rows.
 * Table names are random per run, so parallel runs never share them.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { mysqlStore } from '../../adapters/stores/mysql.js';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { ensureIdempotencySchema } from '../../src/idempotency/guard.js';
import type { BarrierStore } from '../../src/index.js';
import { deferred, mysqlPool, postgresPool } from '../support/server-harness.js';
import { hasServer, testsEngine } from '../support/servers.js';
import { openTempDb } from '../stores/sqlite-harness.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

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
  /**
   * Holds a lock (SQLite: the file's one writer; else a lock on the ledger) from another
   * transaction until the returned function is called, so a handler's write waits past `lockTimeout`.
   */
  blockWrites(): Promise<() => Promise<void>>;
  /** What a child process needs to open the same store: a URL or file, and the tables. */
  location: { url: string; table: string; ledger: string };
  close(): Promise<void>;
}

/** Engines this run tests (`testsEngine`) and reaches; SQLite needs no server. Use with `describe.each(ENGINES)`. */
export const ENGINES: EngineName[] = (['sqlite', 'mysql', 'postgres'] as const).filter((engine) => testsEngine(engine) && (engine === 'sqlite' || hasServer(engine)));

export async function openEngine(engine: EngineName, options: { connections?: number; lockTimeout?: number } = {}): Promise<EngineHarness> {
  const storeOptions = options.lockTimeout === undefined ? {} : { lockTimeout: options.lockTimeout };
  const suffix = randomUUID().slice(0, 8);
  const table = `idem_key_${suffix}`;
  const ledgerTable = `idem_ledger_${suffix}`;
  if (engine === 'sqlite') {
    const { db, file, dir } = openTempDb();
    db.exec(`CREATE TABLE ${ledgerTable} (seq INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL)`);
    const store = sqliteStore(db, storeOptions);
    await ensureIdempotencySchema(store, { table });
    const count = (sql: string, value: string) => (db.prepare(sql).get(value) as { n: number }).n;
    return {
      engine,
      store,
      table,
      record: async (tx, note) => void tx.prepare(`INSERT INTO ${ledgerTable} (note) VALUES (?)`).run(note),
      ledger: async (note) => count(`SELECT COUNT(*) AS n FROM ${ledgerTable} WHERE note = ?`, note),
      keyRows: async (key) => count(`SELECT COUNT(*) AS n FROM ${table} WHERE idem_key = ?`, key),
      blockWrites: async () => {
        const entered = deferred();
        const release = deferred();
        const holding = store.transaction(async () => {
          entered.resolve();
          await release.promise;
        });
        await entered.promise;
        return () => (release.resolve(), holding);
      },
      location: { url: `sqlite:${file}`, table, ledger: ledgerTable },
      close: async () => {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (engine === 'mysql') {
    const pool = mysqlPool({ connectionLimit: options.connections ?? 8 });
    const store = mysqlStore(pool, storeOptions);
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
      blockWrites: async () => {
        // Under REPEATABLE READ a locking read up to the end of the key range holds the gap every insert needs.
        const connection = await pool.getConnection();
        await connection.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        await connection.query('BEGIN');
        await connection.query(`SELECT seq FROM ${ledgerTable} WHERE seq >= 0 FOR UPDATE`);
        return async () => {
          await connection.query('ROLLBACK');
          connection.release();
        };
      },
      location: { url: MYSQL_URL, table, ledger: ledgerTable },
      close: async () => {
        await pool.query(`DROP TABLE IF EXISTS ${table}, ${ledgerTable}`);
        await pool.end();
      },
    };
  }
  const pool = postgresPool({ max: options.connections ?? 8 });
  const store = postgresStore(pool, storeOptions);
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
    blockWrites: async () => {
      // SHARE conflicts with the ROW EXCLUSIVE lock every insert takes.
      const client = await pool.connect();
      await client.query(`BEGIN; LOCK TABLE ${ledgerTable} IN SHARE MODE`);
      return async () => {
        await client.query('ROLLBACK');
        client.release();
      };
    },
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

/**
 * POSTs `body` (or, for `'endless'`, chunks of 64 KiB without a length until answered or `cap`
 * bytes are sent) over node:http, which reads an answer that comes before the body is sent (fetch
 * fails the request instead). Resolves with the answer, how many bytes had been written when it
 * came and whether the body was complete by then.
 */
export async function postEarly(
  url: string,
  headers: Record<string, string>,
  body: string | 'endless',
  cap = 64 * 1_048_576,
): Promise<Answer & { written: number; complete: boolean }> {
  const chunk = Buffer.alloc(65_536, 0x20);
  const request = httpRequest(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'x-client': 'alice', ...headers } });
  // The server may close the connection once it has answered; the answer is what is asserted.
  request.on('error', () => {});
  const answered = new Promise<IncomingMessage>((resolve) => request.once('response', resolve));
  let written = 0;
  let response: IncomingMessage | undefined;
  void answered.then((r) => (response = r));
  const chunks = body === 'endless' ? undefined : [Buffer.from(body)];
  if (chunks) request.setHeader('content-length', chunks[0]!.byteLength);
  while (!response && written < (chunks ? chunks[0]!.byteLength : cap)) {
    const next = chunks ? chunks[0]!.subarray(written, written + chunk.byteLength) : chunk;
    written += next.byteLength;
    if (!request.write(next)) await Promise.race([once(request, 'drain'), answered]);
  }
  const complete = !response;
  if (complete) request.end();
  const message = await answered;
  const bytes: Buffer[] = [];
  for await (const part of message) bytes.push(part as Buffer);
  request.destroy();
  const text = Buffer.concat(bytes).toString();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const answerHeaders = new Headers();
  for (const [name, value] of Object.entries(message.headers)) if (typeof value === 'string') answerHeaders.set(name, value);
  return { status: message.statusCode!, text, headers: answerHeaders, json, written, complete };
}
