/**
 * `npm run example:saga`: two banks as Express services on loopback, each with its own database,
 * and a coordinator on a bad network running transfer sagas between them. SQLite by default; set
 * TXBARRIER_MYSQL_URL or TXBARRIER_POSTGRES_URL to run each bank in its own database on that server.
 * Exits non-zero if money was created or lost.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutcomeEvent } from '../../src/index.js';
import { Coordinator, randomFaults } from '../coordinator.js';
import { balances, bankApp, createAccounts } from './bank.js';
import { configFromEnv, openDatabase } from './database.js';

const dir = mkdtempSync(join(tmpdir(), 'txbarrier-saga-'));
const config = configFromEnv(dir);
const seen: Record<string, number> = {};
const hooks = { onOutcome: ({ outcome }: OutcomeEvent) => void (seen[outcome] = (seen[outcome] ?? 0) + 1) };

const bankA = await openDatabase(config, 'txbarrier_example_saga_a', hooks);
const bankB = await openDatabase(config, 'txbarrier_example_saga_b', hooks);
await createAccounts(bankA, { alice: 1000 });
await createAccounts(bankB, { bob: 0 });
const servers = [bankApp(bankA).listen(0, '127.0.0.1'), bankApp(bankB).listen(0, '127.0.0.1')];
await Promise.all(servers.map((server) => once(server, 'listening')));
const [urlA, urlB] = servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`);
console.log(`bank A at ${urlA}, bank B at ${urlB}, on ${config.engine}`);

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
const [a, b] = [await balances(bankA), await balances(bankB)];
console.log(`faults injected: ${JSON.stringify(coordinator.injected)}`);
console.log(`barrier outcomes: ${JSON.stringify(seen)}`);
console.log(`balances: alice@A ${a.alice}, bob@B ${b.bob}; succeeded sagas moved ${moved}`);

await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
await bankA.close({ drop: true });
await bankB.close({ drop: true });
rmSync(dir, { recursive: true, force: true });

if (a.alice !== 1000 - moved || b.bob !== moved) {
  console.error('WRONG: every saga must be fully applied or fully compensated');
  process.exit(1);
}
console.log('Every saga was applied or compensated in full; no money was created or lost.');
