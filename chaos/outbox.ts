/**
 * `npm run chaos:outbox [-- --transactions N] [--engines sqlite,postgres,mysql] [--brokers amqp,nats,kafka]`:
 * the outbox's fault-injection run on every engine and broker. Prints one line per combination;
 * exits 1 on any violation. Server URLs from servers/index.ts (TXBARRIER_POSTGRES_URL, _MYSQL_URL, _AMQP_URL, _NATS_URL).
 * Kafka: TXBARRIER_KAFKA_BROKERS, else the test broker of servers/kafka.ts, started for the run.
 */
import { parseArgs } from 'node:util';
import type { ChaosBroker, ChaosEngine } from './outbox-env.js';
import { type OutboxChaosReport, runOutboxChaos } from './outbox-run.js';
import { MYSQL_URL, POSTGRES_URL } from '../servers/index.js';
import { startKafkaBroker } from '../servers/kafka.js';

const { values } = parseArgs({
  options: {
    transactions: { type: 'string', default: '300' },
    engines: { type: 'string', default: 'sqlite,postgres,mysql' },
    brokers: { type: 'string', default: 'amqp,nats' },
  },
});
const URLS: Record<ChaosEngine, string | undefined> = {
  sqlite: undefined,
  postgres: POSTGRES_URL,
  mysql: MYSQL_URL,
};

const kafka = values.brokers.split(',').includes('kafka') ? await startKafkaBroker() : undefined;
const reports: OutboxChaosReport[] = [];
for (const broker of values.brokers.split(',') as ChaosBroker[]) {
  for (const engine of values.engines.split(',') as ChaosEngine[]) {
    const report = await runOutboxChaos({
      engine,
      broker,
      transactions: Number(values.transactions),
      databaseUrl: URLS[engine],
      kafkaBroker: kafka?.brokers[0],
    });
    reports.push(report);
    const { violations, ...figures } = report;
    console.log(`${broker}/${engine}: ${violations.length === 0 ? 'ok' : `${violations.length} VIOLATIONS`} ${JSON.stringify(figures)}`);
    for (const violation of violations.slice(0, 20)) console.error(`  ${violation}`);
  }
}
await kafka?.stop();
process.exit(reports.some((r) => r.violations.length > 0) ? 1 : 0);
