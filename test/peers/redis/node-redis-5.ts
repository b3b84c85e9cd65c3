/** node-redis 5 (`redis5`, an alias of `redis@5`): the previous major, still widely installed, with RESP2 by default. */
import { createClient, createCluster } from 'redis5';
import { nodeRedisKind } from '../../stores/redis-harness.js';

export const nodeRedis5Kind = nodeRedisKind('node-redis 5', { createClient, createCluster });
