/**
 * `txbarrier/redis` on node-redis (`redis`): `sendCommand` sends each command as it is; a cluster
 * client's routes it by the first key it is given. node-redis is never imported here.
 */
import { defineRedisBarrier, type RedisBarrier, type RedisBarrierOptions } from '../../../src/redis/barrier.js';

/** The part of a node-redis client (`createClient`, connected) the barrier uses. */
export interface NodeRedisClient {
  sendCommand(args: string[]): Promise<unknown>;
}

/** The part of a node-redis cluster client (`createCluster`, connected) the barrier uses. */
export interface NodeRedisCluster {
  /** Only a cluster client has it: how the two are told apart. */
  readonly masters: unknown;
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
}

/**
 * node-redis' own errors for a connection that dropped or never came up, or a command that timed out
 * (its error replies from the server start with the server's code instead).
 */
const LOST =
  /^(Socket closed unexpectedly|The client is closed|The client is offline|Connection timeout|Disconnects client|All the root nodes are unavailable|Socket timeout|Command timed out|Command aborted while waiting)/;

/** The barrier on a node-redis client or cluster client (see docs/redis.md). Checks the options; sends nothing until the first call. */
export function nodeRedisBarrier(client: NodeRedisClient | NodeRedisCluster, options?: RedisBarrierOptions): RedisBarrier {
  const send =
    'masters' in client
      ? (args: readonly string[], firstKey: string | undefined) => client.sendCommand(firstKey, false, [...args])
      : (args: readonly string[]) => client.sendCommand([...args]);
  return defineRedisBarrier(
    {
      send,
      lostConnection: (error) => error instanceof Error && (LOST.test(error.message) || 'syscall' in error),
    },
    options,
  );
}
