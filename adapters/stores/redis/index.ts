/**
 * `txbarrier/redis`: the barrier for business state kept in Redis, on ioredis or node-redis (see
 * docs/redis.md). Neither client is imported: each is described by the part of it the barrier uses.
 */
export { ioredisBarrier, type IoredisClient } from './ioredis.js';
export { nodeRedisBarrier, type NodeRedisClient, type NodeRedisCluster } from './node-redis.js';
export type { AdjustOptions, RedisBarrier, RedisBarrierOptions, RedisConnection, RedisScript } from '../../../src/redis/barrier.js';
export { defineRedisBarrier } from '../../../src/redis/barrier.js';
