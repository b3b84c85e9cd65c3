/**
 * The SDK's own CPU per call, apart from any I/O: `Barrier.from` + `call` on a store whose
 * connection answers at once, and the part of that spent building the insert's SQL text, which
 * the core rebuilds on every call. Against a transaction of about a millisecond, a few
 * microseconds is the ceiling on what the SDK can cost.
 */
import { randomUUID } from 'node:crypto';
import { Barrier, defineStore, type Dialect, mysqlDialect, postgresDialect, sqliteDialect } from '../src/index.js';

export interface OverheadResult {
  dialect: string;
  /** Microseconds of CPU per forward `call`, barrier and outcome bookkeeping included, no I/O. */
  callMicros: number;
  /** Microseconds per `dialect.insertRows(table, 1)`: the SQL text built on each call. */
  insertSqlMicros: number;
}

const DIALECTS: readonly Dialect[] = [sqliteDialect, mysqlDialect, postgresDialect];

async function microsPerCall(calls: number, fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < calls; i++) await fn();
  return ((performance.now() - start) * 1000) / calls;
}

function microsPerSqlText(calls: number, dialect: Dialect): number {
  let length = 0;
  const start = performance.now();
  for (let i = 0; i < calls; i++) length += dialect.insertRows('barrier', 1).length;
  const micros = ((performance.now() - start) * 1000) / calls;
  if (length === 0) throw new Error('no SQL text was built');
  return micros;
}

export async function measureOverhead(calls: number): Promise<OverheadResult[]> {
  const gids = Array.from({ length: calls }, () => randomUUID());
  const results: OverheadResult[] = [];
  for (const dialect of DIALECTS) {
    // Answers as a database would for a first delivery: the one row went in.
    const store = defineStore(dialect, { table: 'barrier', transactionTimeout: false }, () => ({
      acquire: async () => null,
      begin: async () => {},
      commit: async () => true,
      rollback: async () => {},
      release: () => {},
      destroy: () => {},
      runner: () => ({ tx: null, query: async () => 1, affectedRows: (count: number) => count, rows: () => [] }),
    }));
    let next = 0;
    const call = () => Barrier.from({ transType: 'saga', gid: gids[next++ % calls]!, branchId: '01', op: 'action' }).call(store, () => 1);
    await microsPerCall(calls, call); // warm-up
    const callMicros = await microsPerCall(calls, call);
    microsPerSqlText(calls, dialect); // warm-up
    const insertSqlMicros = microsPerSqlText(calls, dialect);
    results.push({ dialect: dialect.name, callMicros, insertSqlMicros });
  }
  return results;
}
