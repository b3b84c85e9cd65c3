import { questionMark } from '../../src/dialects/dialect.js';
import { BarrierConfigError, type BarrierExecutor, type DialectName } from '../../src/index.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor } from './executor-options.js';

export type { ExecutorOptions };

/** The part of a Drizzle `tx` the barrier uses (Drizzle is only imported lazily, for its `sql` tag). */
export interface DrizzleTransaction {
  execute(query: string | { getSQL(): unknown }): PromiseLike<unknown>;
}

/** Drizzle's own class tags, which it compares instead of `instanceof` so that two copies of it agree. */
const ENTITY_KIND = Symbol.for('drizzle:entityKind');
const ENGINES: Record<string, DialectName> = { PgDatabase: 'postgres', MySqlDatabase: 'mysql', BaseSQLiteDatabase: 'sqlite' };
const TRANSACTION_KINDS = new Set(['PgTransaction', 'MySqlTransaction', 'SQLiteTransaction']);

/**
 * A barrier executor on the `tx` of `db.transaction(async (tx) => …)` (node-postgres or mysql2),
 * for `barrier.within`. The engine comes from Drizzle's database class unless `dialect` is given.
 *
 * Not for SQLite: Drizzle's better-sqlite3 transactions are synchronous and end at the first
 * `await`. Use `sqliteStore(client).call(...)` from `txbarrier/sqlite` on the same better-sqlite3
 * `Database` and run Drizzle queries on it inside the function: they join the barrier's transaction.
 */
export function drizzleExecutor<Tx extends DrizzleTransaction>(tx: Tx, options: ExecutorOptions = {}): BarrierExecutor<Tx> {
  const kinds = entityKinds(tx);
  const engine = engineOf('Drizzle', kinds.find((kind) => Object.hasOwn(ENGINES, kind)) ?? kinds[0], ENGINES, options);
  if (engine === 'sqlite') {
    throw new BarrierConfigError(
      "Drizzle's SQLite transactions are synchronous (better-sqlite3) and cannot span the barrier's awaits: " +
        "use sqliteStore(client).call(...) from 'txbarrier/sqlite' on the same Database and run Drizzle queries inside it",
      { code: 'ERR_TXBARRIER_SYNC_TRANSACTION' },
    );
  }
  if (!kinds.some((kind) => TRANSACTION_KINDS.has(kind))) {
    throw notATransaction('Drizzle', 'the tx of db.transaction(async (tx) => ...), not the database');
  }
  const run = async (sql: string, params: readonly unknown[]) => tx.execute(await statement(sql, params));
  const read = RESULTS[engine];
  return ormExecutor(
    engine,
    options,
    { tx, query: run, affectedRows: read.count, rows: read.rows },
    // Split back into text and values around these; Drizzle renders each engine's own placeholders.
    { placeholder: questionMark },
  );
}

let drizzle: Promise<typeof import('drizzle-orm')> | undefined;

/** Our statement as a Drizzle `sql` fragment, its parameters bound as values. */
async function statement(sql: string, params: readonly unknown[]): Promise<{ getSQL(): unknown }> {
  const parts = sql.split('?');
  if (parts.length !== params.length + 1) throw new Error(`txbarrier: ${params.length} parameters for ${parts.length - 1} placeholders`);
  const tag = (await (drizzle ??= import('drizzle-orm'))).sql;
  return tag(Object.assign(parts, { raw: parts }), ...params);
}

/** Drizzle's class tags of `tx`, most derived first. */
function entityKinds(tx: object): string[] {
  const kinds: string[] = [];
  for (let type = tx?.constructor; typeof type === 'function'; type = Object.getPrototypeOf(type)) {
    const kind = (type as unknown as Record<symbol, unknown>)[ENTITY_KIND];
    if (typeof kind === 'string' && Object.hasOwn(type, ENTITY_KIND)) kinds.push(kind);
  }
  return kinds;
}

/** `tx.execute` resolves to the driver's result: node-postgres' result object, mysql2's `[rows or header, fields]`. */
const RESULTS: Record<Exclude<DialectName, 'sqlite'>, { count(result: any): unknown; rows(result: any): unknown }> = {
  postgres: { count: (result) => result?.rowCount, rows: (result) => result?.rows },
  mysql: { count: (result) => result?.[0]?.affectedRows, rows: (result) => result?.[0] },
};
