/**
 * The barrier's scenarios on Redis (test/barrier/conformance.ts, as far as they apply to keys instead
 * of rows), run unchanged on each client against the shared server, under a key prefix of the run's own.
 * Business state is an integer balance per gid; `adjust` is DTM's `RedisCheckAdjustAmount`.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Barrier, BarrierConfigError, BarrierDuplicateMessage, BarrierFailure, type Op, OPS_BY_TRANS_TYPE, ORIGIN_OF, type OutcomeEvent } from '../../src/index.js';
import { defineRedisBarrier, type RedisBarrier } from '../../adapters/stores/redis/index.js';
import { deleteKeys, type RedisClientKind, type RedisTestClient } from './redis-harness.js';

type Fields = Parameters<typeof Barrier.from>[0];
const DAY_S = 86_400;
/** Every transaction type's forward op and the compensation that undoes it: [transType, forward, compensation]. */
const COMPENSATED = Object.entries(OPS_BY_TRANS_TYPE).flatMap(([transType, ops]) =>
  (ops as readonly Op[]).flatMap((op) => {
    const origin = ORIGIN_OF[op];
    return origin && (ops as readonly Op[]).includes(origin) ? [[transType, origin, op] as const] : [];
  }),
);

export function describeRedisConformance(kind: RedisClientKind, url: string): void {
  describe(`txbarrier/redis conformance on ${kind.name}`, () => {
    const prefix = `txb_redis_test:${randomUUID().slice(0, 8)}:`;
    let client: RedisTestClient;
    let store: RedisBarrier;
    beforeAll(async () => {
      client = await kind.connect(url);
      store = client.barrier({ prefix });
    });
    afterAll(async () => {
      if (!client) return;
      await deleteKeys(client, prefix);
      await client.close();
      expect(client.errors).toEqual([]);
    });

    const gidOf = () => `gid-${randomUUID()}`;
    const balanceKey = (gid: string) => `${prefix}balance:${gid}`;
    const barrier = (gid: string, transType: string, op: string, branchId = '01') => Barrier.from({ transType, gid, branchId, op } as Fields);
    /** An account of 100 for the gid. */
    const open = async (gid: string, amount = 100) => client.command('SET', balanceKey(gid), String(amount));
    const balance = async (gid: string) => Number(await client.command('GET', balanceKey(gid)));
    /** One delivery of a transfer's branch: a fresh Barrier, as a new request makes. Forward ops take 30, compensations give it back. */
    const deliver = (gid: string, transType: string, op: string, branchId = '01') =>
      store.adjust(barrier(gid, transType, op, branchId), balanceKey(gid), ['compensate', 'cancel', 'rollback'].includes(op) ? 30 : -30);
    /** The barrier keys of a gid and their values, names without the prefix. */
    const barrierKeys = async (gid: string) => {
      const [, keys] = (await client.command('SCAN', '0', 'MATCH', `${prefix}${gid}-*`, 'COUNT', '100000')) as [string, string[]];
      const entries = await Promise.all(keys.map(async (key) => [key.slice(prefix.length + gid.length + 1), await client.command('GET', key)] as const));
      return Object.fromEntries(entries.sort(([a], [b]) => a.localeCompare(b)));
    };

    it('applies a forward op once, with the new value, and reports the repeat as a duplicate', async () => {
      const gid = gidOf();
      await open(gid);
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'applied', value: 70 });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'duplicate' });
      expect(await balance(gid)).toBe(70);
      // DTM's key name, the op as its value.
      expect(await barrierKeys(gid)).toEqual({ '01-action-01': 'action' });
    });

    it('compensates an action that applied, once', async () => {
      const gid = gidOf();
      await open(gid);
      await deliver(gid, 'saga', 'action');
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'applied', value: 100 });
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'duplicate' });
      expect(await balance(gid)).toBe(100);
    });

    it('turns a compensation without its action into a null compensation, and blocks the late action', async () => {
      const gid = gidOf();
      await open(gid);
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'null-compensation' });
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'duplicate' });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'dangling' });
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'dangling' });
      expect(await balance(gid)).toBe(100);
      expect(await barrierKeys(gid)).toEqual({ '01-action-01': 'compensate', '01-compensate-01': 'compensate' });
    });

    it.each(COMPENSATED)('%s: %s then %s applies both; %s first makes the late %s dangle', async (transType, forward, compensation) => {
      const ordered = gidOf();
      await open(ordered);
      expect((await deliver(ordered, transType, forward)).outcome).toBe('applied');
      expect((await deliver(ordered, transType, compensation)).outcome).toBe('applied');
      expect(await balance(ordered)).toBe(100);

      const reversed = gidOf();
      await open(reversed);
      expect((await deliver(reversed, transType, compensation)).outcome).toBe('null-compensation');
      expect((await deliver(reversed, transType, forward)).outcome).toBe('dangling');
      expect(await balance(reversed)).toBe(100);
    });

    it('tcc confirm and xa commit apply once, as forward ops', async () => {
      const gid = gidOf();
      await open(gid);
      await deliver(gid, 'tcc', 'try');
      expect((await deliver(gid, 'tcc', 'confirm')).outcome).toBe('applied');
      expect((await deliver(gid, 'tcc', 'confirm')).outcome).toBe('duplicate');
      expect(await balance(gid)).toBe(40);
    });

    it('keeps branches apart: the same op on another branch applies, and a branch id with - or % is escaped', async () => {
      const gid = gidOf();
      await open(gid);
      expect((await deliver(gid, 'saga', 'action', '01')).outcome).toBe('applied');
      expect((await deliver(gid, 'saga', 'action', '02')).outcome).toBe('applied');
      expect((await deliver(gid, 'saga', 'compensate', '03')).outcome).toBe('null-compensation');
      expect((await deliver(gid, 'saga', 'compensate', '01')).outcome).toBe('applied');
      expect(await balance(gid)).toBe(70);
      // ("a-b", "c") and ("a", "b-c") must not share keys: the branch id's - is escaped.
      const other = gidOf();
      await open(`${other}-x`);
      await open(other);
      expect((await deliver(`${other}-x`, 'saga', 'action', 'y')).outcome).toBe('applied');
      expect((await store.adjust(barrier(other, 'saga', 'action', 'x-y'), balanceKey(other), -30)).outcome).toBe('applied');
      expect(Object.keys(await barrierKeys(other)).sort()).toEqual(['x%2Dy-action-01', 'x-y-action-01']);
    });

    it('refuses a decrease under min with BarrierFailure, writing nothing; the compensation is then a null one', async () => {
      const gid = gidOf();
      await open(gid, 20);
      const refused = await deliver(gid, 'saga', 'action').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(BarrierFailure);
      expect(refused).toMatchObject({ code: 'ERR_TXBARRIER_FAILURE', message: expect.stringContaining('under 0') });
      expect(await barrierKeys(gid)).toEqual({});
      expect(await balance(gid)).toBe(20);
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'null-compensation' });
      expect(await balance(gid)).toBe(20);
      // min: another floor, or none; an increase is never refused.
      expect(await store.adjust(barrier(gidOf(), 'saga', 'action'), balanceKey(gid), -30, { min: -10 })).toEqual({ outcome: 'applied', value: -10 });
      expect(await store.adjust(barrier(gidOf(), 'saga', 'action'), balanceKey(gid), -1000, { min: null })).toEqual({ outcome: 'applied', value: -1010 });
      expect(await store.adjust(barrier(gidOf(), 'saga', 'action'), balanceKey(gid), 10)).toEqual({ outcome: 'applied', value: -1000 });
    });

    it('refuses a missing key with BarrierFailure, and a value that is not an integer with the server error, writing nothing', async () => {
      const gid = gidOf();
      await expect(deliver(gid, 'saga', 'action')).rejects.toMatchObject({ name: 'BarrierFailure', message: expect.stringContaining('does not exist') });
      await client.command('SET', balanceKey(gid), 'ten');
      await expect(deliver(gid, 'saga', 'action')).rejects.toThrow('is not a number');
      await client.command('SET', balanceKey(gid), '100.5');
      await expect(deliver(gid, 'saga', 'action')).rejects.toThrow(/not an integer/);
      expect(await barrierKeys(gid)).toEqual({});
    });

    it("runs the user's script with its own KEYS and ARGV, only when the op applies", async () => {
      const gid = gidOf();
      const stock = store.script(`
        local left = tonumber(redis.call('GET', KEYS[1]) or '0')
        if left < tonumber(ARGV[1]) then return failure('sold out: ' .. left .. ' left') end
        redis.call('DECRBY', KEYS[1], ARGV[1])
        redis.call('RPUSH', KEYS[2], ARGV[2])
        return {left - tonumber(ARGV[1]), #KEYS, #ARGV}`);
      const keys = [`${prefix}stock:${gid}`, `${prefix}orders:${gid}`];
      await client.command('SET', keys[0]!, '1');
      expect(await store.run(barrier(gid, 'msg', 'msg', '00'), stock, keys, [1, 'order-1'])).toEqual({ outcome: 'applied', value: [0, 2, 2] });
      const soldOut = await store.run(barrier(gidOf(), 'msg', 'msg', '00'), stock, keys, [1, 'order-2']).catch((e: unknown) => e);
      expect(soldOut).toBeInstanceOf(BarrierFailure);
      expect((soldOut as Error).message).toBe('sold out: 0 left');
      expect(await client.command('LRANGE', keys[1]!, '0', '-1')).toEqual(['order-1']);
      // A script returning nothing applies with null.
      expect(await store.run(barrier(gidOf(), 'saga', 'action'), store.script('redis.call("INCR", KEYS[1])'), [keys[0]!])).toEqual({ outcome: 'applied', value: null });
    });

    it("rethrows the script's error reply or runtime error unchanged and writes no barrier key, so a retry applies", async () => {
      const gid = gidOf();
      const key = `${prefix}counter:${gid}`;
      const flaky = store.script(`
        if redis.call('GET', KEYS[1]) == false then
          redis.call('SET', KEYS[1], '0')
          return redis.error_reply('NOTREADY set up first')
        end
        if ARGV[1] == 'raise' then error('raised on purpose') end
        return redis.call('INCR', KEYS[1])`);
      await expect(store.run(barrier(gid, 'saga', 'action'), flaky, [key], ['ok'])).rejects.toThrow('NOTREADY set up first');
      await expect(store.run(barrier(gid, 'saga', 'action'), flaky, [key], ['raise'])).rejects.toThrow('raised on purpose');
      expect(await barrierKeys(gid)).toEqual({});
      expect(await store.run(barrier(gid, 'saga', 'action'), flaky, [key], ['ok'])).toEqual({ outcome: 'applied', value: 1 });
      expect(await store.run(barrier(gid, 'saga', 'action'), flaky, [key], ['ok'])).toEqual({ outcome: 'duplicate' });
    });

    it('numbers several calls of one handler 01, 02, … and a retry replays them as duplicates', async () => {
      const gid = gidOf();
      await open(gid);
      const handler = async () => {
        const b = barrier(gid, 'saga', 'action');
        const first = await store.adjust(b, balanceKey(gid), -10);
        const second = await store.adjust(b, balanceKey(gid), -20);
        return [first.outcome, second.outcome];
      };
      expect(await handler()).toEqual(['applied', 'applied']);
      expect(await handler()).toEqual(['duplicate', 'duplicate']);
      expect(await balance(gid)).toBe(70);
      expect(Object.keys(await barrierKeys(gid))).toEqual(['01-action-01', '01-action-02']);
    });

    it('gives a failed call its barrier id back, so an in-process retry on one instance is the same step', async () => {
      const gid = gidOf();
      await open(gid, 50);
      await deliver(gid, 'saga', 'action');
      const refund = barrier(gid, 'saga', 'compensate');
      await expect(store.adjust(refund, `${prefix}missing:${gid}`, 30)).rejects.toBeInstanceOf(BarrierFailure);
      // As barrier 02 it would find no origin key and skip the real refund as a null compensation.
      expect(await store.adjust(refund, balanceKey(gid), 30)).toEqual({ outcome: 'applied', value: 50 });
    });

    it("reads keys DTM's Go client wrote: its own op's value 'op' is a duplicate, its compensation's 'rollback' a dangle", async () => {
      const gid = gidOf();
      await open(gid);
      await client.command('SET', `${prefix}${gid}-01-action-01`, 'op', 'EX', '600');
      expect(await deliver(gid, 'saga', 'action')).toEqual({ outcome: 'duplicate' });
      const late = gidOf();
      await open(late);
      await client.command('SET', `${prefix}${late}-01-action-01`, 'rollback', 'EX', '600');
      expect(await deliver(late, 'saga', 'action')).toEqual({ outcome: 'dangling' });
      expect([await balance(gid), await balance(late)]).toEqual([100, 100]);
    });

    it('never runs a compensation twice when its origin key expired or was deleted before its own', async () => {
      const gid = gidOf();
      await open(gid);
      await deliver(gid, 'saga', 'action');
      await deliver(gid, 'saga', 'compensate');
      await client.command('DEL', `${prefix}${gid}-01-action-01`);
      expect(await deliver(gid, 'saga', 'compensate')).toEqual({ outcome: 'duplicate' });
      expect(await balance(gid)).toBe(100);
    });

    it('runs a 2-phase message once; a repeat throws; the check-back reads its outcome', async () => {
      const gid = gidOf();
      await open(gid);
      const message = () => store.adjust(Barrier.forMessage(gid), balanceKey(gid), -1);
      expect(await message()).toEqual({ outcome: 'applied', value: 99 });
      await expect(message()).rejects.toMatchObject({ name: 'BarrierDuplicateMessage', committed: true });
      expect(await store.queryPrepared(Barrier.forMessage(gid))).toBe('committed');
      // A check-back for a message whose local transaction never ran marks it rolled back for good.
      const lost = gidOf();
      await open(lost);
      expect(await store.queryPrepared(Barrier.forMessage(lost))).toBe('rolledback');
      const late = await store.adjust(Barrier.forMessage(lost), balanceKey(lost), -1).catch((e: unknown) => e);
      expect(late).toBeInstanceOf(BarrierDuplicateMessage);
      expect(late).toMatchObject({ committed: false });
      expect(await balance(lost)).toBe(100);
      expect(await barrierKeys(lost)).toEqual({ '00-msg-01': 'rollback' });
    });

    it('gives barrier keys a TTL of 7 days by default, or the one configured; under a day is refused without force', async () => {
      const gid = gidOf();
      await open(gid);
      await deliver(gid, 'saga', 'compensate');
      for (const key of ['01-action-01', '01-compensate-01']) {
        const ttl = Number(await client.command('TTL', `${prefix}${gid}-${key}`));
        expect(ttl).toBeGreaterThan(7 * DAY_S - 60);
        expect(ttl).toBeLessThanOrEqual(7 * DAY_S);
      }
      const twoDays = client.barrier({ prefix, ttl: '2d' });
      await twoDays.adjust(barrier(gid, 'saga', 'action', '02'), balanceKey(gid), -1);
      expect(Number(await client.command('TTL', `${prefix}${gid}-02-action-01`))).toBeGreaterThan(2 * DAY_S - 60);
      expect(() => client.barrier({ ttl: '12h' })).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_RETENTION' }));
      const short = client.barrier({ prefix, ttl: 1500, force: true });
      await short.adjust(barrier(gid, 'saga', 'action', '03'), balanceKey(gid), -1);
      expect([1, 2]).toContain(Number(await client.command('TTL', `${prefix}${gid}-03-action-01`)));
    });

    it('refuses bad input and bad options with typed errors, writing nothing', async () => {
      const gid = gidOf();
      await open(gid);
      const b = barrier(gid, 'saga', 'action');
      const bad: Array<() => Promise<unknown>> = [
        () => store.adjust(b, balanceKey(gid), 1.5),
        () => store.adjust(b, balanceKey(gid), -1, { min: Number.NaN }),
        () => store.adjust(b, '', -1),
        () => store.run(b, store.script('return 1'), [balanceKey(gid)], [{} as unknown as string]),
        () => store.run(b, { text: 'return 1', sha: 'nope' }, [balanceKey(gid)]),
      ];
      for (const call of bad) expect(await call().catch((e: unknown) => e)).toMatchObject({ name: 'BarrierConfigError', code: 'ERR_TXBARRIER_REDIS_INPUT' });
      expect(() => store.script('  ')).toThrow(expect.objectContaining({ code: 'ERR_TXBARRIER_REDIS_INPUT' }));
      for (const options of [{ prefix: '{tag}' }, { prefix: 'a\nb' }, { ttl: 'soon' }, { evictionCheck: 'maybe' as 'off' }]) {
        expect(() => client.barrier(options), JSON.stringify(options)).toThrow(BarrierConfigError);
      }
      expect(await barrierKeys(gid)).toEqual({});
      expect(await balance(gid)).toBe(100);
    });

    it("gives barrier keys the business key's hash tag, keeping DTM's name when the gid carries it", async () => {
      const gid = gidOf();
      const tagged = `${prefix}{acct:${gid}}:balance`;
      await client.command('SET', tagged, '100');
      await store.adjust(barrier(gid, 'saga', 'compensate'), tagged, 30);
      const [, keys] = (await client.command('SCAN', '0', 'MATCH', `${prefix}{acct:${gid}}*`, 'COUNT', '100000')) as [string, string[]];
      expect(keys.filter((key) => key !== tagged).sort()).toEqual([`${prefix}{acct:${gid}}\u001f${gid}-01-action-01`, `${prefix}{acct:${gid}}\u001f${gid}-01-compensate-01`]);
      // DTM's advice: the gid carries the tag. Then the name is DTM's own.
      const carried = `{acct:${gid}}-order`;
      await store.adjust(barrier(carried, 'saga', 'action'), tagged, -30);
      expect(await client.command('GET', `${prefix}${carried}-01-action-01`)).toBe('action');
    });

    it('takes one round trip per call once its script is loaded', async () => {
      const sent: string[] = [];
      const counted = defineRedisBarrier({ send: (args) => (sent.push(args[0]!), client.command(...args)), lostConnection: () => false }, { prefix });
      const gid = gidOf();
      await open(gid);
      await counted.adjust(barrier(gidOf(), 'saga', 'action'), balanceKey(gid), -1);
      expect(sent[0]).toBe('CONFIG'); // the eviction check, once per barrier object
      sent.length = 0;
      await counted.adjust(barrier(gid, 'saga', 'action'), balanceKey(gid), -1);
      await counted.adjust(barrier(gid, 'saga', 'compensate'), balanceKey(gid), 1);
      await counted.adjust(barrier(gid, 'saga', 'action'), balanceKey(gid), -1);
      expect(sent).toEqual(['EVALSHA', 'EVALSHA', 'EVALSHA']);
    });

    it('gives one applied and the rest duplicates for one request sent by many clients at once', async () => {
      const gid = gidOf();
      await open(gid);
      const clients = await Promise.all(Array.from({ length: 12 }, () => kind.connect(url)));
      try {
        const outcomes = await Promise.all(clients.map((c) => c.barrier({ prefix }).adjust(barrier(gid, 'saga', 'action'), balanceKey(gid), -30)));
        expect(outcomes.map((o) => o.outcome).sort()).toEqual(['applied', ...Array(11).fill('duplicate')]);
        expect(await balance(gid)).toBe(70);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('keeps an action and its compensation sent by different clients at once consistent, whichever wins', async () => {
      const clients = await Promise.all(Array.from({ length: 8 }, () => kind.connect(url)));
      try {
        const seen = new Set<string>();
        for (let i = 0; i < 40; i++) {
          const gid = gidOf();
          await open(gid);
          const [a, c] = [clients[i % 8]!, clients[(i + 3) % 8]!];
          const [action, compensation] = await Promise.all([
            a.barrier({ prefix }).adjust(barrier(gid, 'saga', 'action'), balanceKey(gid), -30),
            c.barrier({ prefix }).adjust(barrier(gid, 'saga', 'compensate'), balanceKey(gid), 30),
          ]);
          seen.add(`${action.outcome}/${compensation.outcome}`);
          expect(['applied/applied', 'dangling/null-compensation']).toContain(`${action.outcome}/${compensation.outcome}`);
          expect(await balance(gid)).toBe(100);
        }
        expect(seen.size).toBeGreaterThan(0);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('reports every call to onOutcome with fields, outcome and duration', async () => {
      const events: OutcomeEvent[] = [];
      const observed = client.barrier({ prefix, onOutcome: (event) => events.push(event) });
      const gid = gidOf();
      await open(gid, 10);
      await observed.adjust(barrier(gid, 'saga', 'compensate'), balanceKey(gid), 30);
      await observed.adjust(barrier(gid, 'saga', 'action'), balanceKey(gid), -30);
      await expect(observed.adjust(barrier(gid, 'saga', 'action', '02'), balanceKey(gid), -30)).rejects.toBeInstanceOf(BarrierFailure);
      expect(events.map((e) => [e.op, e.branchId, e.barrierId, e.outcome, e.committed])).toEqual([
        ['compensate', '01', '01', 'null-compensation', true],
        ['action', '01', '01', 'dangling', true],
        ['action', '02', '01', 'failure', false],
      ]);
      expect(events.every((e) => e.gid === gid && e.transType === 'saga' && e.durationMs >= 0)).toBe(true);
    });

    it('refuses a second call on one instance while the first is running', async () => {
      const gid = gidOf();
      await open(gid);
      const b = barrier(gid, 'saga', 'action');
      const first = store.adjust(b, balanceKey(gid), -1);
      await expect(store.adjust(b, balanceKey(gid), -1)).rejects.toMatchObject({ code: 'ERR_TXBARRIER_CALL_IN_PROGRESS' });
      expect((await first).outcome).toBe('applied');
    });
  });
}
