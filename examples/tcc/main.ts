/**
 * `npm run example:tcc`: the transfer as TCC between two banks on loopback (try freezes the
 * amount, confirm settles it, cancel releases it), driven by a coordinator on a bad network whose
 * held tries arrive after their cancels. SQLite by default; TXBARRIER_MYSQL_URL or
 * TXBARRIER_POSTGRES_URL for a server. Exits non-zero if money was lost or left frozen.
 */
import { Coordinator, randomFaults } from '../../src/testing/index.js';
import { startTwoBanks } from '../two-banks.js';
import * as bank from './bank.js';

const { bankA, bankB, urlA, urlB, seen, stop } = await startTwoBanks('tcc', bank);

const coordinator = new Coordinator({
  faults: randomFaults({ duplicate: 0.15, 'lose-reply': 0.1, 'bad-gateway': 0.1, delay: 0.15 }),
  retryDelayMs: 20,
});
const transfers = Array.from({ length: 20 }, (_, i) => ({
  gid: `tcc-example-${Date.now()}-${i}`,
  amount: 10 + ((i * 37) % 300),
  to: i % 7 === 6 ? 'nobody' : 'bob',
}));
const verdicts = await Promise.all(
  transfers.map(({ gid, amount, to }) =>
    coordinator.tcc(gid, [
      { try: `${urlA}/TransOutTry`, confirm: `${urlA}/TransOutConfirm`, cancel: `${urlA}/TransOutCancel`, payload: { account: 'alice', amount } },
      { try: `${urlB}/TransInTry`, confirm: `${urlB}/TransInConfirm`, cancel: `${urlB}/TransInCancel`, payload: { account: to, amount } },
    ]),
  ),
);
for (const [i, { amount, to }] of transfers.entries()) console.log(`  ${amount} alice@A → ${to}@B: ${verdicts[i]}`);

const moved = transfers.reduce((sum, { amount }, i) => sum + (verdicts[i] === 'confirmed' ? amount : 0), 0);
const alice = (await bank.accounts(bankA)).alice!;
const bob = (await bank.accounts(bankB)).bob!;
console.log(`faults injected: ${JSON.stringify(coordinator.injected)}`);
console.log(`barrier outcomes: ${JSON.stringify(seen)}`);
console.log(`alice@A ${JSON.stringify(alice)}, bob@B ${JSON.stringify(bob)}; confirmed transfers moved ${moved}`);

await stop();

if (alice.balance !== 1000 - moved || bob.balance !== moved || alice.frozen !== 0 || bob.frozen !== 0) {
  console.error('WRONG: every transfer must be confirmed or cancelled in full, with nothing left frozen');
  process.exit(1);
}
console.log('Every transfer was confirmed or cancelled in full; nothing is left frozen.');
