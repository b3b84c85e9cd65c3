import { peerSuite } from '../suite.js';

// The Kafka test broker is started once for the suite (setup.ts); a consumer group's rebalance takes seconds.
export default peerSuite('kafka', { test: { globalSetup: ['test/peers/kafka/setup.ts'], testTimeout: 60_000, hookTimeout: 60_000 } });
