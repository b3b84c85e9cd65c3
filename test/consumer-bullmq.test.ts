/**
 * `txbarrier/bullmq` against the real Redis. Skipped with a message when Redis does not answer;
 * TXBARRIER_REQUIRE_BROKER=1 (CI) makes that a failure.
 */
import { probeBroker } from './consumer-harness.js';
import { bullmqHarness, probeRedis, REMOVAL_WAIT_MS } from './consumer-bullmq-harness.js';
import { describeConsumerSuite } from './consumer-suite.js';
import { REDIS_URL } from '../servers/index.js';

const reachable = await probeBroker(`Redis (BullMQ) at ${REDIS_URL}`, 'TXBARRIER_REDIS_URL', probeRedis);

describeConsumerSuite(bullmqHarness, reachable, { reconnects: true, keepsDeadLetters: true, dedupeWindowMs: REMOVAL_WAIT_MS });
