/**
 * The outbox drained by hand on the raw driver and the raw broker client, and nothing of txbarrier:
 * the limit the relay is measured against. Each round sends exactly the relay's statements (the
 * benchmark checks the text against txbarrier's at start): a transaction that claims due messages
 * and commits their lease, the publishes of the whole claim at once (a publisher confirm each on
 * RabbitMQ, a JetStream ack each on NATS, with the same message id, headers and options), then a
 * transaction that marks the confirmed ones sent. It stops at the first failure: the benchmark's
 * broker accepts everything.
 */
import type { ConfirmChannel } from 'amqplib';
import type { JetStreamClient, MsgHdrs } from 'nats';
import type { DrainArgs, Drainer } from './drain-common.js';
import type { WorkerEngine } from './worker-common.js';

/** The relay's defaults: a 30 s lease; lock timeout 2 s; transaction bound 10 s (+1 s on the server). */
const LEASE_MS = 30_000;

/** The statements of one drain round, as text; `count` is how many rows a claim returned. */
export interface DrainStatements {
  /** Sent once per connection before its first transaction (MariaDB's session lock timeout). */
  session: string[];
  /** Each sent as one query to open a transaction. */
  begin: string[];
  claim: string;
  lease(count: number): string;
  markSent(count: number): string;
}

export function handStatements(engine: WorkerEngine, table: string, batchSize: number): DrainStatements {
  const p = engine === 'postgres' ? (n: number) => `$${n}` : () => '?';
  const params = (count: number, first = 1) => Array.from({ length: count }, (_, i) => p(first + i)).join(', ');
  const t = engine === 'mysql' ? `\`${table}\`` : `"${table}"`;
  const byPrimary = engine === 'mysql' ? `${t} FORCE INDEX (PRIMARY)` : t;
  const now = { postgres: 'CURRENT_TIMESTAMP', mysql: 'UTC_TIMESTAMP(3)', sqlite: "strftime('%Y-%m-%d %H:%M:%f', 'now')" }[engine];
  const later = {
    postgres: `CURRENT_TIMESTAMP + $1 * INTERVAL '1 millisecond'`,
    mysql: 'UTC_TIMESTAMP(3) + INTERVAL (? * 1000) MICROSECOND',
    sqlite: "strftime('%Y-%m-%d %H:%M:%f', 'now', '+' || (? / 1000.0) || ' seconds')",
  }[engine];
  const lock = { postgres: ' FOR UPDATE OF o SKIP LOCKED', mysql: ' FOR UPDATE SKIP LOCKED', sqlite: '' }[engine];
  const [pending, order] = engine !== 'mysql' ? ["o.status >= 'pending' AND o.status <= 'pending'", 'o.status, o.seq'] : ["o.status = 'pending'", 'o.seq'];
  return {
    session: engine === 'mysql' ? ['SET SESSION innodb_lock_wait_timeout = 2/*M!100300 , idle_transaction_timeout = 11*/'] : [],
    begin: {
      postgres: ['BEGIN; SET LOCAL lock_timeout = 2000; SET LOCAL idle_in_transaction_session_timeout = 11000; SET LOCAL statement_timeout = 11000'],
      // The relay's store on MariaDB runs at read committed, as its documentation asks.
      mysql: ['SET TRANSACTION ISOLATION LEVEL READ COMMITTED', 'START TRANSACTION'],
      sqlite: ['BEGIN IMMEDIATE'],
    }[engine],
    claim:
      `SELECT o.seq, o.id, o.topic, o.msg_key, o.headers, o.payload, o.attempts FROM ${t} o
WHERE ${pending} AND o.available_at <= ${now}
  AND (o.msg_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM ${t} p WHERE p.msg_key = o.msg_key AND p.seq < o.seq AND p.status <> 'sent'))
ORDER BY ${order} LIMIT ${batchSize}${lock}`,
    lease: (count) => `UPDATE ${byPrimary} SET attempts = attempts + 1, available_at = ${later} WHERE seq IN (${params(count, 2)})`,
    markSent: (count) =>
      `UPDATE ${byPrimary} SET status = 'sent', sent_at = ${now}, last_error = NULL ` +
      `WHERE status = 'pending' AND seq IN (${params(count)}) AND id IN (${params(count, count + 1)})`,
  };
}

interface Row {
  seq: unknown;
  id: string;
  topic: string;
  headers: string;
  payload: Buffer;
}

/** One transaction on the engine's raw driver: the statements `work` runs between BEGIN and COMMIT. */
type Transaction = <T>(work: (query: (sql: string, params: unknown[]) => Promise<{ rows: Row[]; affected: number }>) => Promise<T>) => Promise<T>;

async function openTransactions(args: DrainArgs, statements: DrainStatements): Promise<{ transaction: Transaction; close(): Promise<void> }> {
  switch (args.engine) {
    case 'postgres': {
      const { default: pg } = await import('pg');
      // One connection, closed when idle: the server is shared, and only the variant draining needs one.
      const pool = new pg.Pool({ connectionString: args.target, max: 1, idleTimeoutMillis: 1000 });
      return {
        transaction: async (work) => {
          const client = await pool.connect();
          try {
            for (const sql of statements.begin) await client.query(sql);
            const result = await work(async (sql, params) => {
              const { rows, rowCount } = await client.query(sql, params);
              return { rows: rows as Row[], affected: rowCount ?? 0 };
            });
            if ((await client.query('COMMIT')).command === 'ROLLBACK') throw new Error('transaction rolled back at COMMIT');
            client.release();
            return result;
          } catch (error) {
            client.release(true);
            throw error;
          }
        },
        close: () => pool.end(),
      };
    }
    case 'mysql': {
      const { default: mysql } = await import('mysql2/promise');
      const pool = mysql.createPool({ uri: args.target, connectionLimit: 1, idleTimeout: 3_600_000 });
      const configured = new WeakSet<object>();
      return {
        transaction: async (work) => {
          const connection = await pool.getConnection();
          try {
            if (!configured.has(connection.connection)) {
              for (const sql of statements.session) await connection.query(sql);
              configured.add(connection.connection);
            }
            for (const sql of statements.begin) await connection.query(sql);
            const result = await work(async (sql, params) => {
              const [rows] = await connection.query(sql, params);
              return Array.isArray(rows) ? { rows: rows as unknown as Row[], affected: 0 } : { rows: [], affected: (rows as { affectedRows: number }).affectedRows };
            });
            await connection.query('COMMIT');
            connection.release();
            return result;
          } catch (error) {
            connection.destroy();
            throw error;
          }
        },
        close: () => pool.end(),
      };
    }
    case 'sqlite': {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(args.target, { timeout: 10_000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      const prepared = new Map<string, import('better-sqlite3').Statement>();
      const statement = (sql: string) => {
        let found = prepared.get(sql);
        if (!found) prepared.set(sql, (found = db.prepare(sql)));
        return found;
      };
      return {
        transaction: async (work) => {
          for (const sql of statements.begin) statement(sql).run();
          try {
            const result = await work(async (sql, params) => {
              const s = statement(sql);
              return s.reader ? { rows: s.all(...params) as Row[], affected: 0 } : { rows: [], affected: s.run(...params).changes };
            });
            statement('COMMIT').run();
            return result;
          } catch (error) {
            if (db.inTransaction) statement('ROLLBACK').run();
            throw error;
          }
        },
        close: async () => void db.close(),
      };
    }
  }
}

/** Publishes one claimed row and resolves once the broker has it (a confirm, an ack). */
type Publish = (row: Row) => Promise<void>;

async function openBroker(args: DrainArgs): Promise<{ publish: Publish; close(): Promise<void> }> {
  if (args.broker === 'amqp') {
    const { default: amqp } = await import('amqplib');
    const connection = await amqp.connect(args.brokerUrl);
    const channel: ConfirmChannel = await connection.createConfirmChannel();
    let returned = 0;
    channel.on('return', () => returned++);
    return {
      publish: (row) => {
        const { 'content-type': contentType, ...headers } = JSON.parse(row.headers) as Record<string, string>;
        return new Promise<void>((resolve, reject) => {
          channel.publish(
            '',
            row.topic,
            row.payload,
            { messageId: row.id, headers, persistent: true, mandatory: true, timestamp: Math.floor(Date.now() / 1000), ...(contentType ? { contentType } : {}) },
            (error: unknown) => (error ? reject(error) : returned > 0 ? reject(new Error('a message came back unroutable')) : resolve()),
          );
        });
      },
      close: async () => {
        await channel.close();
        await connection.close();
      },
    };
  }
  const nats = await import('nats');
  const connection = await nats.connect({ servers: args.brokerUrl });
  const jetstream: JetStreamClient = connection.jetstream();
  return {
    publish: async (row) => {
      const entries = Object.entries(JSON.parse(row.headers) as Record<string, string>);
      let headers: MsgHdrs | undefined;
      if (entries.length > 0) {
        headers = nats.headers();
        for (const [name, value] of entries) headers.set(name, value);
      }
      await jetstream.publish(row.topic, row.payload, { msgID: row.id, timeout: 5000, ...(headers ? { headers } : {}) });
    },
    close: () => connection.close(),
  };
}

export async function handDrainer(args: DrainArgs): Promise<{ drain: Drainer; close(): Promise<void> }> {
  const statements = handStatements(args.engine, args.table, args.batchSize);
  const db = await openTransactions(args, statements);
  const broker = await openBroker(args);
  const drain: Drainer = async () => {
    let messages = 0;
    let claims = 0;
    for (;;) {
      const claimed = await db.transaction(async (query) => {
        const { rows } = await query(statements.claim, []);
        if (rows.length > 0) await query(statements.lease(rows.length), [LEASE_MS, ...rows.map((row) => row.seq)]);
        return rows;
      });
      if (claimed.length === 0) return { messages, claims, failures: 0 };
      claims++;
      await Promise.all(claimed.map(broker.publish));
      const marked = await db.transaction((query) =>
        query(statements.markSent(claimed.length), [...claimed.map((row) => row.seq), ...claimed.map((row) => row.id)]),
      );
      if (marked.affected !== claimed.length) throw new Error(`marked ${marked.affected} of ${claimed.length} claimed messages sent`);
      messages += claimed.length;
    }
  };
  return {
    drain,
    close: async () => {
      await broker.close();
      await db.close();
    },
  };
}
