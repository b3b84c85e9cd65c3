/**
 * `txbarrier/redis` on the shared Redis, on both clients: the barrier's scenarios and races from many
 * clients, under a key prefix of the run's own (`txb_redis_test:<run>:`), deleted afterwards.
 */
import { describe } from 'vitest';
import { REDIS_URL } from '../../servers/index.js';
import { describeRedisConformance } from './redis-conformance.js';
import { CLIENT_KINDS } from './redis-harness.js';
import { sharedRedisReachable } from './redis-probe.js';

const reachable = await sharedRedisReachable();

describe.skipIf(!reachable)(`txbarrier/redis on ${REDIS_URL}`, () => {
  for (const kind of CLIENT_KINDS) describeRedisConformance(kind, REDIS_URL);
});
