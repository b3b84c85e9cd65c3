import type { BarrierExecutor, DialectName } from '../../src/index.js';
import { engineOf, type ExecutorOptions, notATransaction, ormExecutor, returnsRows } from './executor-options.js';

export type { ExecutorOptions };

/** The part of the `tx` of Prisma's `prisma.$transaction(async (tx) => …)` the barrier uses (Prisma is never imported here). */
export interface PrismaTransactionClient {
  $executeRawUnsafe(query: string, ...values: any[]): PromiseLike<number>;
  $queryRawUnsafe(query: string, ...values: any[]): PromiseLike<unknown>;
}

/**
 * What Prisma puts on the client of an interactive transaction, and on no other: its place in the
 * transaction (Prisma ≥ 7; no public property says it). The schema's datasource `provider`.
 */
const SCOPE = Symbol.for('prisma.client.transaction.scope_context');
interface PrismaInternals {
  readonly [SCOPE]?: object;
  readonly _activeProvider?: string;
}

/** Prisma's providers whose driver adapters (`@prisma/adapter-pg`, `-mariadb`, `-better-sqlite3`) were checked. */
const ENGINES: Record<string, DialectName> = { postgresql: 'postgres', mysql: 'mysql', sqlite: 'sqlite' };

/**
 * A barrier executor on the `tx` of `prisma.$transaction(async (tx) => …)` (Prisma 7 with a driver
 * adapter), for `barrier.within`. The barrier's statements run in that transaction through
 * `$executeRawUnsafe` (the count) and `$queryRawUnsafe` (rows: a select, `INSERT … RETURNING`);
 * Prisma still commits or rolls back. The engine comes from the client's datasource provider
 * (`postgresql`, `mysql`, `sqlite`) unless `dialect` is given.
 *
 * Prisma ends an interactive transaction after 5 s by default (`timeout`): past it the commit
 * fails and nothing is written, barrier rows included, so the coordinator's retry runs it again.
 * Raise it in `$transaction`'s options for slow business work.
 */
export function prismaExecutor<Tx extends PrismaTransactionClient>(tx: Tx, options: ExecutorOptions = {}): BarrierExecutor<Tx> {
  const internals = (tx ?? {}) as PrismaInternals;
  const engine = engineOf('Prisma', internals._activeProvider, ENGINES, options);
  if (internals[SCOPE] === undefined) {
    throw notATransaction('Prisma', 'the tx of prisma.$transaction(async (tx) => ...), not the PrismaClient');
  }
  const run = (sql: string, params: readonly unknown[]) =>
    // Only $queryRawUnsafe gives rows and only $executeRawUnsafe the count; the barrier's statements
    // that return rows are its selects and its INSERT … RETURNING.
    Promise.resolve(returnsRows(sql) ? tx.$queryRawUnsafe(sql, ...params) : tx.$executeRawUnsafe(sql, ...params)).catch(withDriverCause);
  return ormExecutor(engine, options, { tx, query: run, affectedRows: (count) => count, rows: (rows) => rows });
}

/**
 * Prisma keeps the database's own error code in `meta.driverAdapterError.cause.originalCode`,
 * where nothing reads it. Given to its error as the standard `cause` (`code`, and `errno` when
 * numeric, as pg, mysql2 and better-sqlite3 spell them), a deadlock or serialization failure is
 * recognised as `BarrierOngoing` and a missing table named as such. The error is rethrown itself.
 */
function withDriverCause(error: unknown): never {
  const original = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; originalMessage?: unknown } } } })?.meta
    ?.driverAdapterError?.cause;
  if (error instanceof Error && error.cause === undefined && typeof original?.originalCode === 'string') {
    const code = original.originalCode;
    const cause = { code, message: String(original.originalMessage ?? ''), ...(/^\d+$/.test(code) ? { errno: Number(code) } : {}) };
    Object.defineProperty(error, 'cause', { value: cause, configurable: true, writable: true });
  }
  throw error;
}
