/**
 * The Redis clients `txbarrier/redis` supports, behind one shape for the tests: a connected client
 * as a barrier, raw commands on the same client, and a close that leaves nothing running. Each is
 * set to give up on a lost connection quickly, as a service behind a coordinator should.
 */
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster } from 'redis';
import {
  ioredisBarrier,
  nodeRedisBarrier,
  type NodeRedisClient,
  type NodeRedisCluster,
  type RedisBarrier,
  type RedisBarrierOptions,
} from '../../adapters/stores/redis/index.js';

export interface RedisTestClient {
  barrier(options?: RedisBarrierOptions): RedisBarrier;
  /** One raw command on the same client, e.g. `command('GET', key)`. */
  command(...args: string[]): Promise<unknown>;
  /** Errors the client emitted (a test that cuts a connection expects some; the rest must see none). */
  readonly errors: Error[];
  close(): Promise<void>;
}

export interface RedisClientKind {
  readonly name: string;
  /** Whether the client sends a command again when the connection dropped before its reply came (ioredis does). */
  readonly resends: boolean;
  /** A connected client of `url`; `cluster`: a Redis Cluster client seeded with that node. */
  connect(url: string, options?: { cluster?: boolean }): Promise<RedisTestClient>;
}

export const ioredisKind: RedisClientKind = {
  name: 'ioredis',
  resends: true,
  async connect(url, { cluster = false } = {}) {
    const { hostname, port } = new URL(url);
    const errors: Error[] = [];
    const client = cluster
      ? new Cluster([{ host: hostname, port: Number(port) }], { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 2 } })
      : new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    client.on('error', (error: Error) => errors.push(error));
    await client.connect();
    return {
      barrier: (options) => ioredisBarrier(client, options),
      command: (command, ...args) => client.call(command, args),
      errors,
      async close() {
        await client.quit().catch(() => client.disconnect());
      },
    };
  },
};

/** What the tests use of a node-redis major's `createClient` and `createCluster` (5 and 6 alike). */
export interface NodeRedisLibrary {
  createClient(options: { url: string; socket: NodeRedisSocket }): NodeRedisClient & NodeRedisLifecycle;
  createCluster(options: { rootNodes: { url: string }[]; defaults: { socket: NodeRedisSocket } }): NodeRedisCluster & NodeRedisLifecycle;
}
type NodeRedisSocket = { reconnectStrategy: (retries: number) => number | Error };
interface NodeRedisLifecycle {
  on(event: 'error', listener: (error: Error) => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<void>;
}

/** A node-redis major as a client kind. */
export function nodeRedisKind(name: string, library: NodeRedisLibrary): RedisClientKind {
  return {
    name,
    resends: false,
    async connect(url, { cluster = false } = {}) {
      const errors: Error[] = [];
      // Reconnect quickly and few times: a test that cuts the connection must not wait for the default backoff.
      const socket = { reconnectStrategy: (retries: number) => (retries > 20 ? new Error('gave up reconnecting') : 50) };
      const client = cluster ? library.createCluster({ rootNodes: [{ url }], defaults: { socket } }) : library.createClient({ url, socket });
      client.on('error', (error) => errors.push(error));
      await client.connect();
      return {
        barrier: (options) => nodeRedisBarrier(client, options),
        command: (...args) => ('masters' in client ? client.sendCommand(args[1], false, args) : client.sendCommand(args)),
        errors,
        close: () => client.close(),
      };
    },
  };
}

/** node-redis 6, the `redis` package's current major. */
export const nodeRedis6Kind = nodeRedisKind('node-redis', { createClient, createCluster });

export const CLIENT_KINDS: readonly RedisClientKind[] = [ioredisKind, nodeRedis6Kind];

/** Deletes every key under `prefix` (SCAN, never KEYS), on a client of the shared server. */
export async function deleteKeys(client: RedisTestClient, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = (await client.command('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000')) as [string, string[]];
    if (keys.length > 0) await client.command('UNLINK', ...keys);
    cursor = next;
  } while (cursor !== '0');
}
