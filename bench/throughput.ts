/**
 * The barrier's cost in throughput: the SDK against the hand-written barrier and the bare
 * transaction, per op kind and concurrency; the schema comparison; 1- and 5-statement business.
 */
import { randomUUID } from 'node:crypto';
import { Barrier, BarrierOngoing } from '../src/index.js';
import { type BenchEngine, type BranchOp, type Layout, randomTransfers, type Transfer } from './engine.js';
import { interleave, type Measured, type RoundPlan, type Variant } from './rounds.js';

export interface Settings {
  rounds: number;
  roundSeconds: number;
  /** Client counts for the cost section; the other sections use the largest. */
  clients: number[];
}

/** Database conflicts (deadlock, lock timeout, busy file) met and retried, by variant; reported, since each costs throughput. */
export type Conflicts = Record<string, number>;

/**
 * One barrier-protected op by the SDK or by hand on `table`; throws unless it applied, since a
 * duplicate or null compensation would do less work and flatter the figure. A conflict is
 * retried, as a coordinator would, and counted under `name`.
 */
export function barrierOp<Tx>(
  engine: BenchEngine<Tx>,
  table: string,
  op: BranchOp,
  statements: number,
  conflicts: Conflicts,
  name: string,
) {
  const store = engine.store(table);
  const once = async (gid: string, transfers: Transfer[]) => {
    const barrier = Barrier.from({ transType: 'saga', gid, branchId: '01', op });
    const result = await barrier.call(store, (tx) => engine.business(tx, transfers));
    if (result.outcome !== 'applied') throw new Error(`SDK ${op} of ${gid} was ${result.outcome}, expected applied`);
  };
  return async (gid: string) => {
    const transfers = randomTransfers(statements, op === 'action' ? 1 : -1);
    for (;;) {
      try {
        return await once(gid, transfers);
      } catch (error) {
        if (!(error instanceof BarrierOngoing) && !store.dialect.isRetryable(error)) throw error;
        conflicts[name] = (conflicts[name] ?? 0) + 1;
      }
    }
  };
}

export interface SchemaResult {
  clients: number;
  /** Rows (30 days old, spread over the key space) in each table before the measurement. */
  rows: number;
  layouts: readonly Layout[];
  measured: Measured;
  conflicts: Conflicts;
}

/** Section 2: the SDK's forward op on each layout, on tables of `rows` rows; variant names are the layouts. */
export async function measureSchema<Tx>(engine: BenchEngine<Tx>, settings: Settings, rows: number): Promise<SchemaResult> {
  const clients = Math.max(...settings.clients);
  const tableOf = (layout: Layout) => `${engine.prefix}schema_${layout.replace('-', '_')}`;
  const conflicts: Conflicts = {};
  const variants: Variant[] = [];
  for (const layout of engine.layouts) {
    await engine.createBarrierTable(tableOf(layout), layout);
    if (rows > 0) {
      await engine.bulkLoad(tableOf(layout), 0, rows, rows);
      await engine.settle(tableOf(layout));
    }
    const forward = barrierOp(engine, tableOf(layout), 'action', 1, conflicts, layout);
    variants.push({ name: layout, op: () => forward(randomUUID()) });
  }
  const measured = await interleave(variants, plan(settings, clients));
  for (const layout of engine.layouts) await engine.dropTable(tableOf(layout));
  return { clients, rows, layouts: engine.layouts, measured, conflicts };
}

export const STATEMENT_COUNTS = [1, 5] as const;

/** Section 3: the SDK's forward op against the bare transaction, with 1 and 5 business statements. */
export interface StatementsResult {
  clients: number;
  measured: Measured;
  conflicts: Conflicts;
}

export async function measureStatements<Tx>(engine: BenchEngine<Tx>, settings: Settings): Promise<StatementsResult> {
  const clients = Math.max(...settings.clients);
  const table = `${engine.prefix}statements`;
  await engine.createBarrierTable(table, 'default');
  const conflicts: Conflicts = {};
  const variants: Variant[] = STATEMENT_COUNTS.flatMap((count) => {
    const forward = barrierOp(engine, table, 'action', count, conflicts, `sdk x${count}`);
    return [
      { name: `bare x${count}`, op: () => engine.bare(randomTransfers(count, 1)) },
      { name: `sdk x${count}`, op: () => forward(randomUUID()) },
    ];
  });
  const measured = await interleave(variants, plan(settings, clients));
  await engine.dropTable(table);
  return { clients, measured, conflicts };
}

function plan(settings: Settings, clients: number): RoundPlan {
  return { rounds: settings.rounds, roundSeconds: settings.roundSeconds, clients };
}
