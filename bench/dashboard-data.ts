/**
 * Tables of a given size for the dashboard's query plans (test/peers/dashboard/plans.test.ts, 100k
 * rows) and its benchmark (bench/dashboard.ts, 1M outbox and 10M barrier rows), written by the
 * database itself in chunks of INSERT … SELECT over a number series, so a fill costs no round trip
 * per row.
 *
 * The outbox: one message in 100 parked, the newest tenth pending (a backlog), the rest sent; ages
 * spread over a day, one message in ten keyed. The barrier table: ages spread over 30 days, so most
 * rows are past a 7-day retention. Idempotency keys: ages over two days with a one-day lifetime, so
 * about half have expired; one in a thousand without a response.
 */
import type { EngineName } from '../servers/index.js';

export interface DashboardTables {
  outbox: string;
  barrier: string;
  keys: string;
}

export interface DashboardSizes {
  outbox: number;
  barrier: number;
  keys: number;
}

/** Runs one statement (no parameters) on the engine. */
export type Run = (sql: string) => Promise<unknown>;

const CHUNK = 500_000;

interface FillEngine {
  quote(table: string): string;
  /** Rows `n` from `from` to `to` inclusive. */
  series(from: number, to: number): string;
  /** Now minus `seconds` (an SQL expression), with milliseconds, as the outbox stores it. */
  ago(seconds: string): string;
  /** The same at whole seconds, as the barrier table stores it. */
  agoSeconds(seconds: string): string;
  /** Text `prefix` followed by the number `n`. */
  label(prefix: string, n: string): string;
  bytes: string;
}

const ENGINES: Record<EngineName, FillEngine> = {
  postgres: {
    quote: (table) => table.split('.').map((part) => `"${part}"`).join('.'),
    series: (from, to) => `SELECT n FROM generate_series(${from}, ${to}) n`,
    ago: (seconds) => `CURRENT_TIMESTAMP - (${seconds}) * INTERVAL '1 second'`,
    agoSeconds: (seconds) => `date_trunc('second', CURRENT_TIMESTAMP - (${seconds}) * INTERVAL '1 second')`,
    label: (prefix, n) => `'${prefix}' || (${n})`,
    bytes: `'\\x7b7d'::bytea`,
  },
  mysql: {
    quote: (table) => table.split('.').map((part) => `\`${part}\``).join('.'),
    // MariaDB's Sequence engine: any range as a table, no recursion limit.
    series: (from, to) => `SELECT seq AS n FROM seq_${from}_to_${to}`,
    ago: (seconds) => `UTC_TIMESTAMP(3) - INTERVAL ROUND((${seconds}) * 1000000) MICROSECOND`,
    agoSeconds: (seconds) => `UTC_TIMESTAMP() - INTERVAL ROUND(${seconds}) SECOND`,
    label: (prefix, n) => `CONCAT('${prefix}', ${n})`,
    bytes: `'{}'`,
  },
  sqlite: {
    quote: (table) => table.split('.').map((part) => `"${part}"`).join('.'),
    series: (from, to) => `WITH RECURSIVE s(n) AS (SELECT ${from} UNION ALL SELECT n + 1 FROM s WHERE n < ${to}) SELECT n FROM s`,
    ago: (seconds) => `strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (${seconds}) || ' seconds')`,
    agoSeconds: (seconds) => `datetime('now', '-' || CAST(${seconds} AS INTEGER) || ' seconds')`,
    label: (prefix, n) => `'${prefix}' || (${n})`,
    bytes: `X'7b7d'`,
  },
};

/** Fills the three tables (which must exist and be empty) to `sizes` rows. */
export async function fillDashboardTables(engine: EngineName, run: Run, tables: DashboardTables, sizes: DashboardSizes): Promise<void> {
  const e = ENGINES[engine];
  const chunks = async (total: number, insert: (from: number, to: number) => string) => {
    for (let from = 1; from <= total; from += CHUNK) await run(insert(from, Math.min(total, from + CHUNK - 1)));
  };
  const o = sizes.outbox;
  const outboxAge = `(${o} - n) * ${86_400 / o}`;
  await chunks(o, (from, to) =>
    `INSERT INTO ${e.quote(tables.outbox)} (id, topic, msg_key, headers, payload, status, attempts, available_at, last_error, created_at, sent_at) ` +
      `SELECT ${e.label('m-', 'n')}, 'orders', CASE WHEN n % 10 = 0 THEN ${e.label('k', 'n % 1000')} END, '{}', ${e.bytes}, ` +
      `CASE WHEN n % 100 = 0 THEN 'parked' WHEN n > ${o * 0.9} THEN 'pending' ELSE 'sent' END, ` +
      `CASE WHEN n % 100 = 0 THEN 20 ELSE 1 END, ${e.ago(outboxAge)}, CASE WHEN n % 100 = 0 THEN 'broker unreachable' END, ` +
      `${e.ago(outboxAge)}, CASE WHEN n % 100 <> 0 AND n <= ${o * 0.9} THEN ${e.ago(`${outboxAge} - 1`)} END ` +
      `FROM (${e.series(from, to)}) numbers`,
  );
  const b = sizes.barrier;
  await chunks(b, (from, to) =>
    `INSERT INTO ${e.quote(tables.barrier)} (trans_type, gid, branch_id, op, barrier_id, reason, create_time, update_time) ` +
      `SELECT 'saga', ${e.label('g', 'n')}, '01', 'action', '01', 'action', ${e.agoSeconds(`(${b} - n) * ${(30 * 86_400) / b}`)}, ` +
      `${e.agoSeconds(`(${b} - n) * ${(30 * 86_400) / b}`)} FROM (${e.series(from, to)}) numbers`,
  );
  const k = sizes.keys;
  const now = Date.now();
  await chunks(k, (from, to) =>
    `INSERT INTO ${e.quote(tables.keys)} (scope, idem_key, fingerprint, status, headers, body, created_at, expires_at) ` +
      `SELECT 'client', ${e.label('k', 'n')}, '${'0'.repeat(64)}', CASE WHEN n % 1000 = 0 THEN NULL ELSE 201 END, '{}', ${e.bytes}, ` +
      `${now} - (${k} - n) * ${Math.floor((2 * 86_400_000) / k)}, ${now} - (${k} - n) * ${Math.floor((2 * 86_400_000) / k)} + 86400000 ` +
      `FROM (${e.series(from, to)}) numbers`,
  );
}
