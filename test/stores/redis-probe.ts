/**
 * Whether the Redis tests can run here. The shared Redis (REDIS_URL) and the `redis-server` binary
 * (for the private servers) are skipped on a laptop, saying why; in CI (`CI=true`,
 * TXBARRIER_REQUIRE_DBS=1 or TXBARRIER_REQUIRE_REDIS=1) a missing one fails the run.
 */
import { Redis } from 'ioredis';
import { REDIS_URL } from '../../servers/index.js';
import { redisServerProblem } from '../../servers/redis.js';

const REQUIRED = process.env.CI === 'true' || process.env.TXBARRIER_REQUIRE_DBS === '1' || process.env.TXBARRIER_REQUIRE_REDIS === '1';

function missing(what: string, problem: string): false {
  if (REQUIRED) throw new Error(`${what} is required here (CI, TXBARRIER_REQUIRE_DBS or TXBARRIER_REQUIRE_REDIS) but ${problem}`);
  console.warn(`\ntxbarrier: SKIPPING ${what}: ${problem}\n`);
  return false;
}

/** True when the shared Redis answers PING. */
export async function sharedRedisReachable(): Promise<boolean> {
  const redis = new Redis(REDIS_URL, { connectTimeout: 3000, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch (error) {
    return missing('the txbarrier/redis tests on the shared Redis', `${REDIS_URL} does not answer (${(error as Error).message}); set TXBARRIER_REDIS_URL`);
  } finally {
    redis.disconnect();
  }
}

/** True when `redis-server` can be started for the private-server tests. */
export function redisServerAvailable(): boolean {
  const problem = redisServerProblem();
  return problem === undefined || missing('the txbarrier/redis tests on a private redis-server', problem);
}
