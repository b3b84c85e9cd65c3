/**
 * The saga and TCC examples as real services on loopback, driven over HTTP by the example
 * coordinator under a fault plan that guarantees every anomaly: duplicated deliveries, lost
 * replies, gateway errors, and forward requests held in the network until after the compensations.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import * as saga from '../../examples/saga/bank.js';
import { type DatabaseConfig, type Engine, openDatabase } from '../../examples/saga/database.js';
import * as tcc from '../../examples/tcc/bank.js';
import { Barrier, type OutcomeEvent } from '../../src/index.js';
import { type Attempt, Coordinator, type Delivery, type NetworkFault } from '../../src/testing/index.js';
import { type Listening, listen } from '../fronts/express-http.js';
import { hasServer } from '../support/servers.js';
import { sqliteHarness } from '../stores/sqlite-harness.js';
import { MYSQL_URL, POSTGRES_URL } from '../../servers/index.js';

const OPENING_BALANCE = 100;

/** What the network does to each transaction's requests. */
const PLANS: Record<string, (attempt: Attempt) => NetworkFault | undefined> = {
  clean: () => undefined,
  'every request twice': () => 'duplicate',
  'first replies lost': ({ attempt }) => (attempt === 1 ? 'lose-reply' : undefined),
  'first attempts hit a bad gateway': ({ attempt }) => (attempt === 1 ? 'bad-gateway' : undefined),
  // Branch 02's forward op never answers: the coordinator gives up and compensates, and only
  // then does the network deliver the held requests.
  'second forward op held until after the compensations': ({ branchId, op }) =>
    branchId === '02' && isForward(op) ? 'delay' : undefined,
  // The first forward request is held; its retry goes through, and the held one arrives late.
  'first forward request held, retry goes through': ({ branchId, op, attempt }) =>
    branchId === '01' && isForward(op) && attempt === 1 ? 'delay' : undefined,
  'second phase duplicated after a lost reply': ({ op, attempt }) =>
    isForward(op) ? undefined : attempt === 1 ? 'lose-reply' : 'duplicate',
};
const CASES = ['fits', 'too large', 'unknown payee'] as const;

function isForward(op: string): boolean {
  return op === 'action' || op === 'try';
}

interface Transfer {
  gid: string;
  from: string;
  to: string;
  amount: number;
  plan: string;
  /** The verdict the transfer must end with, from its case and its plan. */
  expected: 'applied' | 'undone';
}

function transfers(): Transfer[] {
  const run = randomBytes(4).toString('hex');
  return Object.keys(PLANS).flatMap((plan, p) =>
    CASES.map((kind, k) => {
      const i = p * CASES.length + k;
      return {
        gid: `examples-${run}-${i}`,
        from: `payer${i}`,
        to: kind === 'unknown payee' ? `ghost${i}` : `payee${i}`,
        amount: kind === 'too large' ? OPENING_BALANCE + 1 + i : 1 + i,
        plan,
        expected: kind === 'fits' && plan !== 'second forward op held until after the compensations' ? 'applied' : 'undone',
      };
    }),
  );
}

const ENGINES: [Engine, () => boolean, (dir: string) => DatabaseConfig][] = [
  ['sqlite', () => true, (dir) => ({ engine: 'sqlite', dir })],
  ['mysql', () => hasServer('mysql'), () => ({ engine: 'mysql', url: MYSQL_URL })],
  ['postgres', () => hasServer('postgres'), () => ({ engine: 'postgres', url: POSTGRES_URL })],
];

describe.each(ENGINES)('examples on %s', (_, available, configOf) => {
  /** Two banks on loopback, each with its own database, and every barrier outcome they report. */
  async function twoBanks(kind: 'saga' | 'tcc', list: Transfer[]) {
    const outcomes: OutcomeEvent[] = [];
    const hooks = { onOutcome: (event: OutcomeEvent) => void outcomes.push(event) };
    const suffix = randomBytes(4).toString('hex');
    const dir = mkdtempSync(join(tmpdir(), 'txbarrier-examples-'));
    const open = (bank: string) => openDatabase(configOf(dir), `examples_${kind}_${bank}_${suffix}`, hooks);
    const banks = { a: await open('a'), b: await open('b') };
    const example = kind === 'saga' ? saga : tcc;
    await example.createAccounts(banks.a, Object.fromEntries(list.map((t) => [t.from, OPENING_BALANCE])));
    await example.createAccounts(banks.b, Object.fromEntries(list.filter((t) => !t.to.startsWith('ghost')).map((t) => [t.to, 0])));
    const servers: Listening[] = [await listen(example.bankApp(banks.a)), await listen(example.bankApp(banks.b))];
    const [urlA, urlB] = servers.map((server) => `${server.url}/api`);
    const close = async () => {
      for (const server of servers) await server.close();
      for (const db of Object.values(banks)) await db.close({ drop: true });
      rmSync(dir, { recursive: true, force: true });
    };
    return { banks, urlA: urlA!, urlB: urlB!, outcomes, close };
  }

  function coordinatorFor(list: Transfer[]) {
    const planOf = new Map(list.map((t) => [t.gid, PLANS[t.plan]!]));
    return new Coordinator({ faults: (delivery) => planOf.get(delivery.gid)!(delivery), retryDelayMs: 5, timeoutMs: 10_000 });
  }

  /** Money is conserved, and each transfer is either wholly applied or wholly undone, as its case and plan say. */
  function checkBalances(list: Transfer[], verdicts: string[], a: Record<string, number>, b: Record<string, number>) {
    expect(verdicts.map((v) => (v === 'succeeded' || v === 'confirmed' ? 'applied' : 'undone'))).toEqual(list.map((t) => t.expected));
    for (const t of list) {
      const moved = t.expected === 'applied' ? t.amount : 0;
      expect(a[t.from], `${t.gid} payer (${t.plan})`).toBe(OPENING_BALANCE - moved);
      if (!t.to.startsWith('ghost')) expect(b[t.to], `${t.gid} payee (${t.plan})`).toBe(moved);
    }
    const total = [...Object.values(a), ...Object.values(b)].reduce((sum, n) => sum + n, 0);
    expect(total).toBe(OPENING_BALANCE * list.length);
  }

  /** Every anomaly reached the services, and the barrier absorbed it. */
  function checkAnomaliesSeen(outcomes: OutcomeEvent[], coordinator: Coordinator) {
    const count = (outcome: string) => outcomes.filter((e) => e.outcome === outcome).length;
    for (const outcome of ['applied', 'duplicate', 'null-compensation', 'dangling', 'failure']) {
      expect(count(outcome), outcome).toBeGreaterThan(0);
    }
    expect(Object.values(coordinator.injected).every((n) => n > 0)).toBe(true);
  }

  it.skipIf(!available())('saga: every transfer is applied or compensated in full under a faulty coordinator', async () => {
    const list = transfers();
    const { banks, urlA, urlB, outcomes, close } = await twoBanks('saga', list);
    try {
      const coordinator = coordinatorFor(list);
      const verdicts = await Promise.all(
        list.map((t) =>
          coordinator.saga(t.gid, [
            { action: `${urlA}/TransOut`, compensate: `${urlA}/TransOutCompensate`, payload: { account: t.from, amount: t.amount } },
            { action: `${urlB}/TransIn`, compensate: `${urlB}/TransInCompensate`, payload: { account: t.to, amount: t.amount } },
          ]),
        ),
      );
      checkBalances(list, verdicts, await saga.balances(banks.a), await saga.balances(banks.b));
      checkAnomaliesSeen(outcomes, coordinator);
    } finally {
      await close();
    }
  });

  it.skipIf(!available())('tcc: every transfer is confirmed or cancelled in full, and nothing stays frozen', async () => {
    const list = transfers();
    const { banks, urlA, urlB, outcomes, close } = await twoBanks('tcc', list);
    try {
      const coordinator = coordinatorFor(list);
      const verdicts = await Promise.all(
        list.map((t) =>
          coordinator.tcc(t.gid, [
            { try: `${urlA}/TransOutTry`, confirm: `${urlA}/TransOutConfirm`, cancel: `${urlA}/TransOutCancel`, payload: { account: t.from, amount: t.amount } },
            { try: `${urlB}/TransInTry`, confirm: `${urlB}/TransInConfirm`, cancel: `${urlB}/TransInCancel`, payload: { account: t.to, amount: t.amount } },
          ]),
        ),
      );
      const [a, b] = [await tcc.accounts(banks.a), await tcc.accounts(banks.b)];
      const frozen = Object.entries({ ...a, ...b }).filter(([, account]) => account.frozen !== 0);
      expect(frozen).toEqual([]);
      const balance = (accounts: typeof a) => Object.fromEntries(Object.entries(accounts).map(([id, { balance }]) => [id, balance]));
      checkBalances(list, verdicts, balance(a), balance(b));
      checkAnomaliesSeen(outcomes, coordinator);
    } finally {
      await close();
    }
  });
});

describe('example scripts', () => {
  // The npm scripts as a user runs them, on SQLite whatever the environment says.
  const env = { ...process.env, TXBARRIER_MYSQL_URL: '', TXBARRIER_POSTGRES_URL: '' };
  it.each(['saga', 'tcc'])('%s/main.ts runs and finds the money conserved', async (name) => {
    const tsx = join(process.cwd(), 'node_modules/.bin/tsx');
    const { stdout } = await promisify(execFile)(tsx, [join(process.cwd(), `examples/${name}/main.ts`)], { env });
    expect(stdout).toContain('on sqlite');
    expect(stdout).toMatch(/in full; (no money was created or lost|nothing is left frozen)\.$/m);
  });
});

describe('the Coordinator with function handlers', () => {
  it('runs TCC through functions under the same network faults, and the barrier absorbs them', async () => {
    const h = await sqliteHarness();
    try {
      const handler = (delivery: Delivery) =>
        Barrier.from(delivery).call(h.store, (tx) => h.record(tx, delivery.gid, `${delivery.branchId}:${delivery.op}`));
      const coordinator = new Coordinator({
        // Every first attempt is duplicated, branch 02's try is held until after the transaction.
        faults: ({ attempt, branchId, op }) => (branchId === '02' && op === 'try' ? 'delay' : attempt === 1 ? 'duplicate' : undefined),
        retryDelayMs: 1,
      });
      const gid = `coordinator-${randomBytes(4).toString('hex')}`;
      const branch = { try: handler, confirm: handler, cancel: handler, payload: null };
      expect(await coordinator.tcc(gid, [branch, branch])).toBe('cancelled');
      // 01 tried and cancelled once each; 02's cancel came first (null), its held try arrived late and never applied.
      expect(await h.notes(gid)).toEqual(['01:try', '01:cancel']);
      expect(coordinator.injected.duplicate).toBeGreaterThan(0);
      expect(coordinator.injected.delay).toBe(3);
    } finally {
      await h.close();
    }
  });
});
