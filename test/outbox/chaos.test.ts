/**
 * A short outbox chaos run per broker and engine (relays SIGKILLed between publish and record, two
 * relays racing, the consumer SIGKILLed between commit and ack, broker connections dropped, poison
 * messages), and the control run that shows the check fails a consumer without the barrier.
 */
import { describe, expect, it } from 'vitest';
import { runOutboxChaos } from '../../chaos/outbox-run.js';
import { BROKERS, ENGINES } from './harness.js';
import { AMQP_URL, MYSQL_URL, NATS_URL, POSTGRES_URL } from '../../servers/index.js';

const URLS = { sqlite: undefined, postgres: POSTGRES_URL, mysql: MYSQL_URL };
// Each relay dies at its fourth confirmed publish: 24 messages are confirmed in all, so at least one of them does.
const SHORT = { transactions: 30, kills: { relays: [[4], [4]] as [number[], number[]], consumer: [5] }, amqpUrl: AMQP_URL, natsUrl: NATS_URL };

describe('outbox chaos', () => {
  for (const broker of BROKERS) {
    for (const engine of ENGINES) {
      it.skipIf(broker.skip || engine.skip)(`${broker.name} with ${engine.name}: every committed message applied once, nothing rolled back published`, async () => {
        const report = await runOutboxChaos({ ...SHORT, engine: engine.name, broker: broker.name, databaseUrl: URLS[engine.name] });
        expect(report.violations).toEqual([]);
        expect(report.committed).toBe(25);
        expect(report.rolledBack).toBe(5);
        // The invariant is the violations list above: every committed message applied exactly once, or
        // parked or dead-lettered and reported. Which of those each message meets depends on how the
        // faults fell (the refused one is always parked; a message the faults kept failing may be parked
        // too), so only the broad shape is pinned here. The fates may overlap: a publish whose confirm a
        // dropped connection lost can reach the consumer (applied, or a poison one dead-lettered) while the
        // relay, never told, parks it (a requeue is absorbed by the barrier): the counts add up to at least 25.
        expect(report.parked).toBeGreaterThanOrEqual(1);
        expect(report.applied + report.parked + report.deadLettered).toBeGreaterThanOrEqual(25);
        const figures = JSON.stringify(report);
        // Of the 23 deliverable messages (25 less the refused and the poison one) most are applied. Not
        // all: the chaos relay's retries give up after ~2 s, so on a loaded machine a dropped broker
        // connection can outlast them and park a few more (seen: 18 applied, 5 parked, at load 14),
        // a reported outcome the violations check already accepts. A relay that parked most would fail here.
        expect(report.applied, figures).toBeGreaterThanOrEqual(13);
        expect(report.relayKills, figures).toBeGreaterThanOrEqual(1);
        expect(report.consumerKills, figures).toBeGreaterThanOrEqual(1);
        expect(report.connectionDrops, figures).toBeGreaterThanOrEqual(1);
      }, 60_000);
    }
  }

  const sqlite = ENGINES.find((e) => e.name === 'sqlite')!;
  const amqp = BROKERS.find((b) => b.name === 'amqp')!;
  it.skipIf(amqp.skip || sqlite.skip)('fails a consumer that applies without the barrier', async () => {
    const report = await runOutboxChaos({ ...SHORT, engine: 'sqlite', broker: 'amqp', consumerWithoutBarrier: true });
    expect(report.violations.some((v) => /applied \d+ times/.test(v))).toBe(true);
  }, 60_000);
});
