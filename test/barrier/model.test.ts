/**
 * The model checker's model (model/barrier.pml) and the code, kept in step:
 * - model/decision.pml is what model/generate.ts makes of src/barrier/decision.ts now;
 * - the real code decides every row of those tables as the tables say, on SQLite always and on
 *   MariaDB and PostgreSQL when reachable, in both of its forms (RETURNING, one statement per row);
 * - spin finds no error in the model exhaustively, and a counterexample in each mutant.
 * Without spin (Debian's `spin` package, which compiles its verifier with gcc) this file skips on
 * a laptop and fails in CI (`CI` or `TXBARRIER_REQUIRE_DBS=1`).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECISION_MODEL_FILE, generateDecisionModel, MODEL_ORIGIN_OF, type ModelOp } from '../../model/generate.js';
import { COMPENSATION_TABLE, FORWARD_TABLE } from '../../src/barrier/decision.js';
import { Barrier, type BarrierStore, type StoreOptions } from '../../src/index.js';
import type { BarrierRowRead, Harness } from './conformance.js';
import { mysqlHarness, postgresHarness } from '../support/server-harness.js';
import { hasServer } from '../support/servers.js';
import { sqliteHarness } from '../stores/sqlite-harness.js';

const run = promisify(execFile);
const MODEL_DIR = fileURLToPath(new URL('../../model/', import.meta.url));

describe('model/decision.pml', () => {
  it('is what model/generate.ts makes of src/barrier/decision.ts (regenerate: npx tsx model/generate.ts)', () => {
    expect(readFileSync(DECISION_MODEL_FILE, 'utf8')).toBe(generateDecisionModel());
  });
});

/** The transaction types whose ops the model checks, each compensation with the op it undoes. */
const COMPENSATIONS = [
  { transType: 'saga', op: 'compensate' },
  { transType: 'tcc', op: 'cancel' },
  { transType: 'workflow', op: 'rollback' },
] as const satisfies readonly { transType: string; op: ModelOp }[];

/** An engine for the table rows: a store, and the committed rows of one gid as `op:reason`. */
interface TableEngine {
  name: string;
  skip: boolean;
  open(): Promise<{ store: BarrierStore<unknown>; rows(gid: string): Promise<string[]>; close(): Promise<void> }>;
}

const TABLES = { table: 'model_table_barrier', notes: 'model_table_notes' };
const readRows = (rows: BarrierRowRead[]) => rows.map((row) => `${row.op}:${row.reason}`).sort();

const TABLE_ENGINES: TableEngine[] = [
  { name: 'SQLite, INSERT … RETURNING', skip: false, open: () => engineOf(sqliteHarness()) },
  { name: 'SQLite, one statement per row', skip: false, open: () => engineOf(sqliteHarness(), { returning: false }) },
  { name: 'MariaDB, INSERT … RETURNING', skip: !hasServer('mysql'), open: () => engineOf(mysqlHarness(TABLES)) },
  {
    name: 'MariaDB, one statement per row (as on MySQL)',
    skip: !hasServer('mysql'),
    open: () => engineOf(mysqlHarness(TABLES), { table: TABLES.table, returning: false }),
  },
  { name: 'PostgreSQL', skip: !hasServer('postgres'), open: () => engineOf(postgresHarness(TABLES)) },
];

async function engineOf<Tx>(opening: Promise<Harness<Tx>>, options?: StoreOptions) {
  const harness = await opening;
  return {
    store: (options ? harness.makeStore(options) : harness.store) as BarrierStore<unknown>,
    rows: async (gid: string) => readRows(await harness.barrierRows(gid)),
    close: () => harness.close(),
  };
}

describe.each(TABLE_ENGINES)('the code decides every row of the tables the model is generated from: $name', ({ skip, open }) => {
  let engine: Awaited<ReturnType<TableEngine['open']>>;
  beforeAll(async () => {
    if (!skip) engine = await open();
  });
  afterAll(() => engine?.close());

  /** A row as another request (or another writer) left it: committed before the call, written directly. */
  async function insert(transType: string, gid: string, op: string, reason: string) {
    const { store } = engine;
    const values = store.dialect.name === 'postgres' ? '$1, $2, $3, $4, $5, $6' : '?, ?, ?, ?, ?, ?';
    const sql = `INSERT INTO ${store.dialect.quoteTable(store.table)} (trans_type, gid, branch_id, op, barrier_id, reason) VALUES (${values})`;
    await store.transaction((connection) => connection.execute(sql, [transType, gid, '01', op, '01', reason]));
  }

  async function call(transType: string, gid: string, op: string) {
    let ran = false;
    const result = await Barrier.from({ transType, gid, branchId: '01', op }).call(engine.store, () => {
      ran = true;
    });
    return { outcome: result.outcome, ran };
  }

  describe.skipIf(skip).each(COMPENSATIONS)('$transType $op', ({ transType, op }) => {
    const origin = MODEL_ORIGIN_OF[op]!;
    it.each(COMPENSATION_TABLE)('own row goes in: $own, origin row goes in: $origin → $outcome', async (row) => {
      const gid = randomUUID();
      // A row that does not go in is already there: its own from an earlier run of the compensation,
      // the origin's from the origin op (or, with no own row left, from that earlier compensation).
      if (!row.own) await insert(transType, gid, op, op);
      if (!row.origin) await insert(transType, gid, origin, row.own ? origin : op);
      const before = await engine.rows(gid);
      expect(await call(transType, gid, op)).toEqual({ outcome: row.outcome, ran: row.outcome === 'applied' });
      // Whatever the outcome, both rows are there afterwards: the origin's blocks the late op.
      const added = [...(row.own ? [`${op}:${op}`] : []), ...(row.origin ? [`${origin}:${op}`] : [])];
      expect(await engine.rows(gid)).toEqual([...before, ...added].sort());
    });
  });

  const FORWARD = COMPENSATIONS.map(({ transType, op }) => ({ transType, op: MODEL_ORIGIN_OF[op]!, compensation: op }));
  describe.skipIf(skip).each(FORWARD)('$transType $op (compensated by $compensation)', ({ transType, op, compensation }) => {
    it('applies when its row goes in', async () => {
      expect(await call(transType, randomUUID(), op)).toEqual({ outcome: 'applied', ran: true });
    });
    it.each(FORWARD_TABLE)('its row is there, written by $writtenBy → $outcome', async (row) => {
      const gid = randomUUID();
      await insert(transType, gid, op, row.writtenBy === 'same op' ? op : compensation);
      expect(await call(transType, gid, op)).toEqual({ outcome: row.outcome, ran: false });
    });
  });

  it.skipIf(skip)('tcc confirm, a forward op without a compensation: applied, then a duplicate', async () => {
    const gid = randomUUID();
    expect(await call('tcc', gid, 'confirm')).toEqual({ outcome: 'applied', ran: true });
    const same = FORWARD_TABLE.find((row) => row.writtenBy === 'same op')!;
    expect(await call('tcc', gid, 'confirm')).toEqual({ outcome: same.outcome, ran: false });
  });
});

/** A spin run: the transaction type, the engine behaviour and other writers, or a mutant. */
interface Check {
  name: string;
  defines: string[];
  /** For a mutant or a broken rule: part of the assertion spin reports violated. */
  violates?: string;
}

export const MODEL_CHECKS: Check[] = [
  { name: 'saga', defines: ['TX_SAGA'] },
  { name: 'saga, PostgreSQL repeatable read', defines: ['TX_SAGA', 'RR'] },
  { name: "saga, with DTM's Go client", defines: ['TX_SAGA', 'GO'] },
  { name: 'workflow', defines: ['TX_WORKFLOW'] },
  { name: "workflow, with DTM's Python client", defines: ['TX_WORKFLOW', 'PY'] },
  { name: 'tcc', defines: ['TX_TCC'] },
  { name: 'tcc, PostgreSQL repeatable read', defines: ['TX_TCC', 'RR'] },
  { name: '2-phase message and check-back', defines: ['TX_MSG'] },
  { name: '2-phase message and check-back, PostgreSQL repeatable read', defines: ['TX_MSG', 'RR'] },
  { name: 'mutant: a null compensation treated as applied', defines: ['TX_SAGA', 'M_NULL_APPLIED'], violates: 'eff[origin]==1' },
  { name: 'mutant: the dangling check removed', defines: ['TX_SAGA', 'M_NO_DANGLING'], violates: '!(compBlocks)' },
  {
    name: "mutant: decided from the row count alone, DTM's Python client present",
    defines: ['TX_WORKFLOW', 'M_COUNT_ONLY'],
    violates: 'eff[op]==0',
  },
  { name: 'mutant: a failed call advances the barrier id', defines: ['TX_SAGA', 'M_ID_ADVANCE'], violates: '!(compBlocks)' },
  { name: 'retention rule broken: prune within the retry window', defines: ['TX_SAGA', 'PRUNE_EARLY'], violates: '!(compBlocks)' },
  {
    name: "DTM's Python client alone breaks the branch (no origin row for rollback)",
    defines: ['TX_WORKFLOW', 'M_PY_STRICT'],
    violates: 'eff[6]==eff[1]',
  },
];

const REQUIRED = Boolean(process.env.CI) || process.env.TXBARRIER_REQUIRE_DBS === '1';
const INSTALL = 'apt-get install -y spin gcc';

function installed(command: string, versionFlag: string): boolean {
  try {
    execFileSync(command, [versionFlag], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_SPIN = installed('spin', '-V') && installed('gcc', '--version');

if (!HAVE_SPIN && !REQUIRED) console.warn(`test/barrier/model.test.ts: spin or gcc not installed, model checks skipped (${INSTALL})`);

describe('spin', () => {
  if (!HAVE_SPIN) {
    it.runIf(REQUIRED)(`is installed (CI requires it: ${INSTALL})`, () => {
      expect.fail(`spin and gcc are required in CI: ${INSTALL}`);
    });
    return;
  }

  it.each(MODEL_CHECKS)('$name', async ({ defines, violates }) => {
    const result = await verify(defines);
    if (violates === undefined) {
      expect(result.errors, result.output).toBe(0);
    } else {
      expect(result.errors, result.output).toBeGreaterThan(0);
      expect(result.violated, result.output).toContain(violates);
    }
  }, 120_000);
});

interface Verification {
  errors: number;
  states: number;
  violated: string;
  output: string;
}

/**
 * Exhaustive safety search (assertions and invalid end states; no bitstate): spin generates the
 * verifier, gcc compiles it (unoptimised: faster to build than the searches take), pan runs it.
 */
async function verify(defines: string[]): Promise<Verification> {
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-spin-'));
  try {
    for (const file of ['barrier.pml', 'decision.pml']) copyFileSync(join(MODEL_DIR, file), join(dir, file));
    await run('spin', ['-a', ...defines.map((d) => `-D${d}`), 'barrier.pml'], { cwd: dir });
    await run('gcc', ['-O0', '-w', '-DSAFETY', '-DMEMLIM=2048', '-o', 'pan', 'pan.c'], { cwd: dir });
    // pan exits non-zero on an error; its report is what we read either way.
    const { stdout } = await run('./pan', ['-m200000'], { cwd: dir, maxBuffer: 1 << 24 }).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
    );
    if (/max search depth too small/.test(stdout)) throw new Error(`pan: the depth bound cut the search short\n${stdout}`);
    const errors = /errors: (\d+)/.exec(stdout);
    if (!errors) throw new Error(`pan gave no report\n${stdout}`);
    return {
      errors: Number(errors[1]),
      states: Number(/(\d+) states, stored/.exec(stdout)?.[1] ?? 0),
      violated: /assertion violated (.*)/.exec(stdout)?.[1] ?? /invalid end state.*/.exec(stdout)?.[0] ?? '',
      output: stdout,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
