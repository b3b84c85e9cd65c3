/**
 * `npm run chaos:outbox [-- --transactions N] [--engines sqlite,postgres,mysql] [--brokers amqp,nats]`:
 * the outbox's fault-injection run on every engine and broker. Prints one line per combination;
 * exits 1 on any violation. Database URLs from TXBARRIER_POSTGRES_URL / TXBARRIER_MYSQL_URL.
 */
import { parseArgs } from 'node:util';
import type { ChaosBroker, ChaosEngine } from './outbox-env.js';
import { type OutboxChaosReport, runOutboxChaos } from './outbox-run.js';

const { values } = parseArgs({
  options: {
    transactions: { type: 'string', default: '300' },
    engines: { type: 'string', default: 'sqlite,postgres,mysql' },
    brokers: { type: 'string', default: 'amqp,nats' },
  },
});
const URLS: Record<ChaosEngine, string | undefined> = {
  sqlite: undefined,
  postgres: process.env.TXBARRIER_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/txbarrier_test',
  mysql: process.env.TXBARRIER_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/txbarrier_test',
};

const reports: OutboxChaosReport[] = [];
for (const broker of values.brokers.split(',') as ChaosBroker[]) {
  for (const engine of values.engines.split(',') as ChaosEngine[]) {
    const report = await runOutboxChaos({
      engine,
      broker,
      transactions: Number(values.transactions),
      databaseUrl: URLS[engine],
      amqpUrl: process.env.TXBARRIER_AMQP_URL,
      natsUrl: process.env.TXBARRIER_NATS_URL,
    });
    reports.push(report);
    const { violations, ...figures } = report;
    console.log(`${broker}/${engine}: ${violations.length === 0 ? 'ok' : `${violations.length} VIOLATIONS`} ${JSON.stringify(figures)}`);
    for (const violation of violations.slice(0, 20)) console.error(`  ${violation}`);
  }
}
process.exit(reports.some((r) => r.violations.length > 0) ? 1 : 0);
