/**
 * `npm run test:redis`: `txbarrier/redis` where the shared Redis must not be touched. Private
 * `redis-server`s (AOF on, `appendfsync always`, a temporary folder, a free port) that the tests
 * restart, flush, reconfigure, cut connections to, and run as a one-node Redis Cluster. Every
 * server is stopped and its folder removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Barrier, BarrierOngoing } from '../../../src/index.js';
import { type PrivateRedis, startPrivateRedis } from '../../../servers/redis.js';
import { waitUntil } from '../../support/server-harness.js';
import { tcpProxy } from '../../support/tcp-proxy.js';
import { takeWarnings } from '../../support/warnings.js';
import { CLIENT_KINDS, ioredisKind, type RedisTestClient } from '../../stores/redis-harness.js';
import { nodeRedis5Kind } from './node-redis-5.js';
import { redisServerAvailable } from '../../stores/redis-probe.js';

type Fields = Parameters<typeof Barrier.from>[0];
const barrier = (gid: string, transType: string, op: string) => Barrier.from({ transType, gid, branchId: '01', op } as Fields);
const gidOf = () => `gid-${randomUUID()}`;
const available = redisServerAvailable();

/** A client of the test's own, closed however the test ends. */
async function using<T>(client: Promise<RedisTestClient>, use: (client: RedisTestClient) => Promise<T>): Promise<T> {
  const opened = await client;
  try {
    return await use(opened);
  } finally {
    await opened.close();
  }
}

describe.skipIf(!available)('txbarrier/redis on a private redis-server', () => {
  let server: PrivateRedis;
  let admin: RedisTestClient;
  beforeAll(async () => {
    server = await startPrivateRedis();
    admin = await ioredisKind.connect(server.url);
  });
  afterAll(async () => {
    await admin?.close();
    await server?.stop();
    expect(server?.stderr() ?? '').toBe('');
  });

  for (const kind of [...CLIENT_KINDS, nodeRedis5Kind]) {
    describe(kind.name, () => {
      it('loads its scripts again after SCRIPT FLUSH, and the barrier keys still decide', () =>
        using(kind.connect(server.url), async (client) => {
          const store = client.barrier();
          const key = `balance:${randomUUID()}`;
          await client.command('SET', key, '100');
          const add = store.script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
          const first = gidOf();
          expect(await store.run(barrier(first, 'saga', 'action'), add, [key], [-10])).toEqual({ outcome: 'applied', value: 90 });
          expect(await client.command('SCRIPT', 'EXISTS', add.sha)).toEqual([1]);
          await client.command('SCRIPT', 'FLUSH');
          expect(await client.command('SCRIPT', 'EXISTS', add.sha)).toEqual([0]);
          expect(await store.run(barrier(first, 'saga', 'action'), add, [key], [-10])).toEqual({ outcome: 'duplicate' });
          expect(await client.command('SCRIPT', 'EXISTS', add.sha)).toEqual([1]);
          expect(await store.run(barrier(first, 'saga', 'compensate'), add, [key], [10])).toEqual({ outcome: 'applied', value: 100 });
          await client.command('SCRIPT', 'FLUSH');
          expect(await store.adjust(barrier(gidOf(), 'saga', 'action'), key, -1)).toEqual({ outcome: 'applied', value: 99 });
        }));

      it('keeps its barrier keys and their TTL across a restart (AOF), and loads its scripts again', () =>
        using(kind.connect(server.url), async (client) => {
          const store = client.barrier();
          const key = `balance:${randomUUID()}`;
          const gid = gidOf();
          await client.command('SET', key, '100');
          const add = store.script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
          // One handler, two steps (barrier ids 01 and 02): its retry must replay both as duplicates.
          const handler = async () => {
            const b = barrier(gid, 'saga', 'action');
            return [await store.adjust(b, key, -30), await store.run(b, add, [key], [-5])];
          };
          expect(await handler()).toEqual([
            { outcome: 'applied', value: 70 },
            { outcome: 'applied', value: 65 },
          ]);
          await server.restart();
          await waitUntil('the client reconnected to the restarted server', async () => (await client.command('PING').catch(() => undefined)) === 'PONG', { timeoutMs: 20_000, intervalMs: 100 });
          client.errors.length = 0; // the restart's connection errors, expected
          expect(await client.command('SCRIPT', 'EXISTS', add.sha)).toEqual([0]);
          expect(await handler()).toEqual([{ outcome: 'duplicate' }, { outcome: 'duplicate' }]);
          for (const id of ['01', '02']) expect(Number(await client.command('TTL', `${gid}-01-action-${id}`))).toBeGreaterThan(7 * 86_400 - 120);
          expect(await store.adjust(barrier(gid, 'saga', 'compensate'), key, 30)).toEqual({ outcome: 'applied', value: 95 });
          expect(client.errors).toEqual([]);
        }));

      it('applies once when the connection is cut while the script runs; the retry is a duplicate', async () => {
        const proxy = await tcpProxy(server.port);
        try {
          await using(kind.connect(`redis://127.0.0.1:${proxy.port}`), async (client) => {
            const store = client.barrier();
            const key = `counter:${randomUUID()}`;
            const gid = gidOf();
            // Holds the server for 800 ms, then counts: the cut comes while it runs.
            const slow = store.script(`
              local start = redis.call('TIME')
              repeat local now = redis.call('TIME') until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 800000
              return redis.call('INCR', KEYS[1])`);
            const call = store.run(barrier(gid, 'saga', 'action'), slow, [key]).then(
              (result) => result,
              (error: unknown) => error,
            );
            await new Promise((resolve) => setTimeout(resolve, 200));
            proxy.drop();
            const result = await call;
            expect(await admin.command('GET', key)).toBe('1');
            // ioredis sends the unanswered script again once reconnected: it finds its own key. node-redis
            // fails the command: the coordinator's retry (ONGOING) finds it.
            if (kind.resends) expect(result).toEqual({ outcome: 'duplicate' });
            else expect(result).toBeInstanceOf(BarrierOngoing);
            await waitUntil('the client reconnected', async () => (await client.command('PING').catch(() => undefined)) === 'PONG');
            expect(await store.run(barrier(gid, 'saga', 'action'), slow, [key])).toEqual({ outcome: 'duplicate' });
            expect(await admin.command('GET', key)).toBe('1');
            client.errors.length = 0; // the cut's, expected
          });
        } finally {
          await proxy.close();
        }
      });

      it('refuses every call while maxmemory-policy is not noeviction, writing nothing; warn mode warns once', () =>
        using(kind.connect(server.url), async (client) => {
          const key = `balance:${randomUUID()}`;
          await client.command('SET', key, '100');
          await admin.command('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
          try {
            const store = client.barrier();
            const gid = gidOf();
            const refused = await store.adjust(barrier(gid, 'saga', 'action'), key, -30).catch((e: unknown) => e);
            expect(refused).toMatchObject({ name: 'BarrierConfigError', code: 'ERR_TXBARRIER_REDIS_EVICTION', message: expect.stringContaining('volatile-lru') });
            expect(await client.command('EXISTS', `${gid}-01-action-01`)).toBe(0);
            expect(await client.command('GET', key)).toBe('100');
            const warning = client.barrier({ evictionCheck: 'warn' });
            expect((await warning.adjust(barrier(gidOf(), 'saga', 'action'), key, -1)).outcome).toBe('applied');
            expect((await warning.adjust(barrier(gidOf(), 'saga', 'action'), key, -1)).outcome).toBe('applied');
            expect(takeWarnings(/maxmemory-policy is volatile-lru/)).toHaveLength(1);
            await admin.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
            // A fixed policy is seen on the next call: a refusal is not remembered.
            expect(await store.adjust(barrier(gid, 'saga', 'action'), key, -30)).toEqual({ outcome: 'applied', value: 68 });
          } finally {
            await admin.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
          }
        }));

      it('warns once, and goes on, when the server refuses CONFIG GET (an ACL user without it, as on managed Redis)', async () => {
        const user = `app_${kind.name.replace(/\W/g, '_')}`;
        await admin.command('ACL', 'SETUSER', user, 'on', '>not-a-real-secret', '~*', '&*', '+@all', '-config');
        await using(kind.connect(`redis://${user}:not-a-real-secret@127.0.0.1:${server.port}`), async (client) => {
          const key = `balance:${randomUUID()}`;
          await client.command('SET', key, '100');
          const store = client.barrier();
          expect((await store.adjust(barrier(gidOf(), 'saga', 'action'), key, -1)).outcome).toBe('applied');
          expect((await store.adjust(barrier(gidOf(), 'saga', 'action'), key, -1)).outcome).toBe('applied');
          expect(takeWarnings(/could not read maxmemory-policy \(NOPERM/)).toHaveLength(1);
          expect((await client.barrier({ evictionCheck: 'off' }).adjust(barrier(gidOf(), 'saga', 'action'), key, -1)).outcome).toBe('applied');
          expect(takeWarnings()).toEqual([]);
        });
      });
    });
  }
});

describe.skipIf(!available)('txbarrier/redis on a one-node Redis Cluster', () => {
  let server: PrivateRedis;
  let admin: RedisTestClient;
  beforeAll(async () => {
    server = await startPrivateRedis(['--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1']);
    admin = await ioredisKind.connect(server.url);
    await admin.command('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await waitUntil('the cluster is up', async () => String(await admin.command('CLUSTER', 'INFO')).includes('cluster_state:ok'), { intervalMs: 100 });
  });
  afterAll(async () => {
    await admin?.close();
    await server?.stop();
    expect(server?.stderr() ?? '').toBe('');
  });

  for (const kind of [...CLIENT_KINDS, nodeRedis5Kind]) {
    it(`${kind.name}: barrier keys take the business key's hash tag; keys in two slots are a typed CROSSSLOT error`, () =>
      using(kind.connect(server.url, { cluster: true }), async (client) => {
        const store = client.barrier();
        const tagged = `{account:${randomUUID()}}:balance`;
        await client.command('SET', tagged, '100');
        const gid = gidOf();
        expect(await store.adjust(barrier(gid, 'saga', 'compensate'), tagged, 30)).toEqual({ outcome: 'null-compensation' });
        expect(await store.adjust(barrier(gid, 'saga', 'action'), tagged, -30)).toEqual({ outcome: 'dangling' });
        expect(await store.adjust(barrier(gidOf(), 'tcc', 'try'), tagged, -30)).toEqual({ outcome: 'applied', value: 70 });
        expect(await store.queryPrepared(Barrier.forMessage(gidOf()), tagged)).toBe('rolledback');

        // A business key without a tag, in another slot than the barrier keys: refused, nothing written.
        const plain = `plain-balance-${kind.name}`;
        const fixed = `gid-crossslot-${kind.name}`;
        expect(await admin.command('CLUSTER', 'KEYSLOT', plain)).not.toBe(await admin.command('CLUSTER', 'KEYSLOT', `${fixed}-01-action-01`));
        await client.command('SET', plain, '100');
        const refused = await store.adjust(barrier(fixed, 'saga', 'action'), plain, -30).catch((e: unknown) => e);
        expect(refused).toMatchObject({ name: 'BarrierConfigError', code: 'ERR_TXBARRIER_REDIS_CROSSSLOT', message: expect.stringContaining('hash tag') });
        expect(await client.command('GET', plain)).toBe('100');
        const twoTags = store.script("redis.call('INCR', KEYS[1]); redis.call('INCR', KEYS[2])");
        await expect(store.run(barrier(gidOf(), 'saga', 'action'), twoTags, ['{a}:x', '{b}:y'])).rejects.toMatchObject({ code: 'ERR_TXBARRIER_REDIS_CROSSSLOT' });
      }));
  }
});
