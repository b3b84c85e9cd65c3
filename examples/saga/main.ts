/**
 * `npm run example:saga`: two banks as Express services on loopback, each with its own database,
 * and a coordinator on a bad network running transfer sagas between them. SQLite by default; set
 * TXBARRIER_MYSQL_URL or TXBARRIER_POSTGRES_URL to run each bank in its own database on that server.
 * Exits non-zero if money was created or lost.
 */
import { Coordinator, randomFaults } from '../../src/testing/index.js';
import { startTwoBanks } from '../two-banks.js';
import * as bank from './bank.js';

const { bankA, bankB, urlA, urlB, seen, stop } = await startTwoBanks('saga', bank);

const coordinator = new Coordinator({
  faults: randomFaults({ duplicate: 0.15, 'lose-reply': 0.1, 'bad-gateway': 0.1, delay: 0.1 }),
  retryDelayMs: 20,
});
// Twenty transfers at once; some too large for alice, some to an account bank B does not have.
const transfers = Array.from({ length: 20 }, (_, i) => ({
  gid: `saga-example-${Date.now()}-${i}`,
  amount: 10 + ((i * 37) % 300),
  to: i % 7 === 6 ? 'nobody' : 'bob',
}));
const verdicts = await Promise.all(
  transfers.map(({ gid, amount, to }) =>
    coordinator.saga(gid, [
      { action: `${urlA}/TransOut`, compensate: `${urlA}/TransOutCompensate`, payload: { account: 'alice', amount } },
      { action: `${urlB}/TransIn`, compensate: `${urlB}/TransInCompensate`, payload: { account: to, amount } },
    ]),
  ),
);
for (const [i, { amount, to }] of transfers.entries()) console.log(`  ${amount} alice@A → ${to}@B: ${verdicts[i]}`);

const moved = transfers.reduce((sum, { amount }, i) => sum + (verdicts[i] === 'succeeded' ? amount : 0), 0);
const [a, b] = [await bank.balances(bankA), await bank.balances(bankB)];
console.log(`faults injected: ${JSON.stringify(coordinator.injected)}`);
console.log(`barrier outcomes: ${JSON.stringify(seen)}`);
console.log(`balances: alice@A ${a.alice}, bob@B ${b.bob}; succeeded sagas moved ${moved}`);

await stop();

if (a.alice !== 1000 - moved || b.bob !== moved) {
  console.error('WRONG: every saga must be fully applied or fully compensated');
  process.exit(1);
}
console.log('Every saga was applied or compensated in full; no money was created or lost.');
