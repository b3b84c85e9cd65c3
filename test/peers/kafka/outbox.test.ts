/**
 * `txbarrier/outbox/kafka` against the test broker: the outbox suite every broker passes (publish
 * what committed, retry and park what the broker refuses, per-key order), and the outbox chaos run
 * end to end (relays and the consumer SIGKILLed, connections dropped, poison messages).
 */
import { describe, expect, it } from 'vitest';
import { runOutboxChaos } from '../../../chaos/outbox-run.js';
import { describeOutboxBroker } from '../../outbox/broker-suite.js';
import { ENGINES } from '../../outbox/harness.js';
import { MYSQL_URL, POSTGRES_URL } from '../../../servers/index.js';
import { kafkaBrokers, openKafkaOutbox } from './harness.js';

for (const engine of ENGINES) describeOutboxBroker(engine, { name: 'kafka', open: openKafkaOutbox, skip: false, requeueInOrder: false });

const URLS = { sqlite: undefined, postgres: POSTGRES_URL, mysql: MYSQL_URL };

describe('outbox chaos with Kafka', () => {
  for (const engine of ENGINES) {
    it.skipIf(engine.skip)(`${engine.name}: every committed message applied once or reported, nothing rolled back published`, async () => {
      const report = await runOutboxChaos({
        engine: engine.name,
        broker: 'kafka',
        kafkaBroker: kafkaBrokers()[0],
        databaseUrl: URLS[engine.name],
        transactions: 30,
        kills: { relays: [[4], [4]], consumer: [5] },
      });
      const figures = JSON.stringify(report);
      expect(report.violations, figures).toEqual([]);
      expect(report.committed).toBe(25);
      expect(report.rolledBack).toBe(5);
      expect(report.parked).toBeGreaterThanOrEqual(1);
      expect(report.applied + report.parked + report.deadLettered).toBe(25);
      // The invariant is the violations list: every message applied once, or parked or dead-lettered and
      // reported. How many the faults pushed to parking varies with the load (14 applied once in CI at load ~2).
      expect(report.applied, figures).toBeGreaterThanOrEqual(10);
      expect(report.relayKills, figures).toBeGreaterThanOrEqual(1);
      expect(report.consumerKills, figures).toBeGreaterThanOrEqual(1);
      expect(report.connectionDrops, figures).toBeGreaterThanOrEqual(1);
    }, 120_000);
  }
});
