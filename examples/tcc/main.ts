/**
 * `npm run example:tcc`: the transfer as TCC between two banks on loopback (try freezes the
 * amount, confirm settles it, cancel releases it), driven by a coordinator on a bad network whose
 * held tries arrive after their cancels. SQLite by default; TXBARRIER_MYSQL_URL or
 * TXBARRIER_POSTGRES_URL for a server. Exits non-zero if money was lost or left frozen.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutcomeEvent } from '../../src/index.js';
import { Coordinator, randomFaults } from '../coordinator.js';
import { configFromEnv, openDatabase } from '../saga/database.js';
import { accounts, bankApp, createAccounts } from './bank.js';

const dir = mkdtempSync(join(tmpdir(), 'txbarrier-tcc-'));
const config = configFromEnv(dir);
const seen: Record<string, number> = {};
const hooks = { onOutcome: ({ outcome }: OutcomeEvent) => void (seen[outcome] = (seen[outcome] ?? 0) + 1) };

const bankA = await openDatabase(config, 'txbarrier_example_tcc_a', hooks);
const bankB = await openDatabase(config, 'txbarrier_example_tcc_b', hooks);
await createAccounts(bankA, { alice: 1000 });
await createAccounts(bankB, { bob: 0 });
const servers = [bankApp(bankA).listen(0, '127.0.0.1'), bankApp(bankB).listen(0, '127.0.0.1')];
await Promise.all(servers.map((server) => once(server, 'listening')));
const [urlA, urlB] = servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`);
console.log(`bank A at ${urlA}, bank B at ${urlB}, on ${config.engine}`);

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
const alice = (await accounts(bankA)).alice!;
const bob = (await accounts(bankB)).bob!;
console.log(`faults injected: ${JSON.stringify(coordinator.injected)}`);
console.log(`barrier outcomes: ${JSON.stringify(seen)}`);
console.log(`alice@A ${JSON.stringify(alice)}, bob@B ${JSON.stringify(bob)}; confirmed transfers moved ${moved}`);

await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
await bankA.close({ drop: true });
await bankB.close({ drop: true });
rmSync(dir, { recursive: true, force: true });

if (alice.balance !== 1000 - moved || bob.balance !== moved || alice.frozen !== 0 || bob.frozen !== 0) {
  console.error('WRONG: every transfer must be confirmed or cancelled in full, with nothing left frozen');
  process.exit(1);
}
console.log('Every transfer was confirmed or cancelled in full; nothing is left frozen.');
