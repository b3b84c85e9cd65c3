/**
 * `npm run demo`: two banks on SQLite, a tiny in-process coordinator, and every anomaly a real
 * network produces, delivered on purpose. Exits non-zero if money was created or lost.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteStore } from '../adapters/stores/sqlite.js';
import { Barrier, BarrierFailure } from '../src/index.js';

type Db = InstanceType<typeof Database>;

/** One bank: its own database file, its own barrier table, one account per customer. */
class Bank {
  readonly db: Db;
  readonly store;

  constructor(
    readonly name: string,
    file: string,
    accounts: Record<string, number>,
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.exec('CREATE TABLE account (name TEXT PRIMARY KEY, balance INTEGER NOT NULL, frozen INTEGER NOT NULL DEFAULT 0)');
    const insert = this.db.prepare('INSERT INTO account (name, balance) VALUES (?, ?)');
    for (const [name, balance] of Object.entries(accounts)) insert.run(name, balance);
    this.store = sqliteStore(this.db);
  }

  /** A branch handler: what an HTTP route would do with the coordinator's request. */
  async handle(gid: string, branchId: string, op: 'action' | 'compensate', account: string, amount: number) {
    const barrier = Barrier.from({ transType: 'saga', gid, branchId, op });
    return barrier.call(this.store, (db) => {
      const row = db.prepare('SELECT balance, frozen FROM account WHERE name = ?').get(account) as
        | { balance: number; frozen: number }
        | undefined;
      if (!row || row.frozen) throw new BarrierFailure(`${account} cannot take part`);
      if (row.balance + amount < 0) throw new BarrierFailure(`insufficient funds in ${account}`);
      db.prepare('UPDATE account SET balance = balance + ? WHERE name = ?').run(amount, account);
    });
  }

  balance(account: string): number {
    return (this.db.prepare('SELECT balance FROM account WHERE name = ?').get(account) as { balance: number }).balance;
  }
}

console.log('txbarrier demo: a transfer saga between two banks, each with its own SQLite database and barrier table');
const dir = join(process.cwd(), '.demo');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const bankA = new Bank('A', join(dir, 'bank-a.db'), { alice: 1000 });
const bankB = new Bank('B', join(dir, 'bank-b.db'), { bob: 1000, carol: 1000 });
await bankA.store.ensureSchema();
await bankB.store.ensureSchema();
bankB.db.prepare("UPDATE account SET frozen = 1 WHERE name = 'carol'").run();

/** The two branches of a transfer saga: debit at A, credit at B; compensations undo them. */
function transfer(gid: string, from: string, to: string, amount: number, quiet = false) {
  const deliver = (branch: 'out' | 'in', op: 'action' | 'compensate') => {
    const [bank, branchId, account, sign] =
      branch === 'out' ? [bankA, '01', from, -1] : [bankB, '02', to, 1];
    const label = `${bank.name} ${branch === 'out' ? 'TransOut' : 'TransIn '} ${op.padEnd(10)}`;
    return bank.handle(gid, branchId, op, account, op === 'action' ? sign * amount : -sign * amount).then(
      (result) => say(quiet ? undefined : `  ${label} → ${result.outcome}`, result.outcome),
      (error: unknown) => {
        if (!(error instanceof BarrierFailure)) throw error;
        return say(`  ${label} → failed: ${error.message} (the coordinator now compensates)`, 'failure');
      },
    );
  };
  return {
    out: (op: 'action' | 'compensate') => deliver('out', op),
    in: (op: 'action' | 'compensate') => deliver('in', op),
  };
}

const seen = new Map<string, number>();
function say(line: string | undefined, outcome: string) {
  seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
  if (line) console.log(line);
  return outcome;
}
function scene(title: string) {
  console.log(`\n${title}`);
}

scene('1. A plain transfer of 100 from alice@A to bob@B');
let saga = transfer('demo-1', 'alice', 'bob', 100);
await saga.out('action');
await saga.in('action');

scene('2. The reply to TransOut is lost; the coordinator sends it again');
saga = transfer('demo-2', 'alice', 'bob', 50);
await saga.out('action');
await saga.out('action');
await saga.in('action');

scene('3. TransIn times out in the network; the coordinator compensates, then the stuck TransIn arrives');
saga = transfer('demo-3', 'alice', 'bob', 70);
await saga.out('action');
await saga.in('compensate');
await saga.out('compensate');
await saga.in('action');

scene('4. A compensation is delivered twice');
saga = transfer('demo-4', 'alice', 'bob', 30);
await saga.out('action');
await saga.in('action');
await saga.in('compensate');
await saga.in('compensate');
await saga.out('compensate');
await saga.out('compensate');

scene('5. TransOut and its compensation arrive at the same moment (six sagas, either may win)');
for (let i = 0; i < 6; i++) {
  saga = transfer(`demo-5-${i}`, 'alice', 'bob', 10, true);
  const [action, compensation] =
    i % 2 === 0
      ? await Promise.all([saga.out('action'), saga.out('compensate')])
      : await Promise.all([saga.out('compensate'), saga.out('action')]).then(([c, a]) => [a, c]);
  await saga.in('compensate');
  console.log(`  A TransOut action → ${action}, compensate → ${compensation}`);
}

scene('6. carol@B is frozen: TransIn fails for good and the saga is compensated');
saga = transfer('demo-6', 'alice', 'carol', 200);
await saga.out('action');
await saga.in('action');
await saga.in('compensate');
await saga.out('compensate');

scene('7. alice@A has too little: TransOut fails, and the compensations find nothing to undo');
saga = transfer('demo-7', 'alice', 'bob', 1_000_000);
await saga.out('action');
await saga.out('compensate');
await saga.in('compensate');

// Scenes 1 and 2 moved 150; every other transfer was undone or never happened.
const balances = { 'alice@A': bankA.balance('alice'), 'bob@B': bankB.balance('bob'), 'carol@B': bankB.balance('carol') };
const expected = { 'alice@A': 850, 'bob@B': 1150, 'carol@B': 1000 };
const total = Object.values(balances).reduce((a, b) => a + b, 0);
console.log(`\nDeliveries by outcome: ${[...seen].map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`Balances: ${Object.entries(balances).map(([k, v]) => `${k} ${v}`).join(', ')}; total ${total}`);
bankA.db.close();
bankB.db.close();

const correct = total === 3000 && Object.entries(expected).every(([k, v]) => balances[k as keyof typeof balances] === v);
if (!correct) {
  console.error(`WRONG: expected ${JSON.stringify(expected)}, total 3000`);
  process.exit(1);
}
console.log('No money was created or lost. (Databases kept in .demo/ for inspection.)');
