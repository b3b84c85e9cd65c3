/**
 * `txbarrier/redis` on ioredis: its `call` sends each command as it is (a `Redis` or a `Cluster`,
 * which routes `EVALSHA` by its first key). ioredis is never imported here.
 */
import { defineRedisBarrier, type RedisBarrier, type RedisBarrierOptions } from '../../../src/redis/barrier.js';

/** The part of an ioredis `Redis` or `Cluster` the barrier uses. */
export interface IoredisClient {
  call(command: string, args: string[]): Promise<unknown>;
}

/** ioredis' own errors for a connection that dropped, never came up, or a command that timed out. */
const LOST = new Set(['Connection is closed.', 'Command timed out', "Stream isn't writeable and enableOfflineQueue options is false", "Cluster isn't ready and enableOfflineQueue options is false"]);
const LOST_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

/** The barrier on an ioredis client (see docs/redis.md). Checks the options; sends nothing until the first call. */
export function ioredisBarrier(client: IoredisClient, options?: RedisBarrierOptions): RedisBarrier {
  return defineRedisBarrier(
    {
      send: ([command, ...args]) => client.call(command!, args),
      lostConnection: (error) => error instanceof Error && (LOST.has(error.message) || LOST_NAMES.has(error.name) || 'syscall' in error),
    },
    options,
  );
}
