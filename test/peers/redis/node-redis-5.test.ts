/**
 * The barrier's scenarios on node-redis 5, against the shared Redis (the current major runs in
 * `npm test`: test/stores/redis.test.ts). The private-server tests run it too (server.test.ts).
 */
import { describe } from 'vitest';
import { REDIS_URL } from '../../../servers/index.js';
import { describeRedisConformance } from '../../stores/redis-conformance.js';
import { sharedRedisReachable } from '../../stores/redis-probe.js';
import { nodeRedis5Kind } from './node-redis-5.js';

const reachable = await sharedRedisReachable();

describe.skipIf(!reachable)(`txbarrier/redis on ${REDIS_URL}, node-redis 5`, () => {
  describeRedisConformance(nodeRedis5Kind, REDIS_URL);
});
