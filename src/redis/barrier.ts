/**
 * The barrier for business state kept in Redis (`txbarrier/redis`). Redis has no interactive
 * transactions, so each call is one Lua script: the barrier keys' check, the origin-key rule of
 * compensations and the business update run atomically, and the outcome is read with the same
 * decision table as every SQL store. The client is reached through `RedisConnection`, which the
 * adapters (ioredis, node-redis) implement; nothing here knows either.
 */
import { type Barrier, type BarrierResult, callAtomically, type CallTarget, MESSAGE_KEY } from '../barrier/barrier.js';
import { decideCompensation, decideForward, ORIGIN_OF } from '../barrier/decision.js';
import { parseDuration } from '../duration.js';
import { BarrierConfigError, BarrierDuplicateMessage, BarrierFailure, BarrierOngoing } from '../errors.js';
import type { BarrierHooks } from '../observe/hooks.js';
import { barrierKeyNames, checkPrefix } from './keys.js';
import { ADJUST_BODY, barrierScript, QUERY_PREPARED_SCRIPT, REPLY, sha1 } from './script.js';

/** What the barrier needs of a Redis client: one command at a time. The adapters make one from ioredis or node-redis. */
export interface RedisConnection {
  /**
   * Sends one command (its name and arguments) and resolves to the server's reply: integers as
   * numbers, bulk strings as strings, arrays as arrays, nil as `null`. Rejects with the server's
   * error reply (its message starting with the error code, e.g. `NOSCRIPT …`) or a client error.
   * @param firstKey - the command's first key, for a cluster client that routes by it.
   */
  send(args: readonly string[], firstKey: string | undefined): Promise<unknown>;
  /** Whether `error` says the connection dropped or the command timed out: it may or may not have run. */
  lostConnection(error: unknown): boolean;
}

export interface RedisBarrierOptions extends BarrierHooks {
  /** Put in front of every barrier key, e.g. `'barrier:'`; no braces or control characters. Defaults to `''`: DTM's own key names. */
  prefix?: string;
  /**
   * How long a barrier key lives: milliseconds or a duration such as `'7d'`. It must outlast the
   * coordinator's longest retry window (docs/operations.md, the retention rule), or a late action
   * finds no key and applies. Under one day is refused unless `force`. Defaults to `'7d'`.
   */
  ttl?: number | string;
  /** Allow a `ttl` under one day. Defaults to `false`. */
  force?: boolean;
  /**
   * What to do, before the first call, when the server's `maxmemory-policy` is not `noeviction`
   * (an evicted barrier key lets a late action apply): `'refuse'` fails every call with
   * `ERR_TXBARRIER_REDIS_EVICTION` until the policy is fixed; `'warn'` warns once and goes on;
   * `'off'` does not look (a managed Redis whose policy you checked in its console). A server that
   * refuses `CONFIG GET` gets one warning under `'refuse'` and `'warn'`. Defaults to `'refuse'`.
   */
  evictionCheck?: 'refuse' | 'warn' | 'off';
}

/** Options of `adjust`. */
export interface AdjustOptions {
  /** A decrease that would leave the value under this is refused with `BarrierFailure`; `null`: no floor. Defaults to `0` (DTM's). */
  min?: number | null;
}

/** A business script prepared for `run`: its whole text (the barrier around your body) and that text's SHA1. */
export interface RedisScript {
  readonly text: string;
  readonly sha: string;
}

/** The barrier on one Redis (or Redis Cluster) client. */
export interface RedisBarrier {
  /**
   * DTM's `RedisCheckAdjustAmount`: adds `delta` (an integer) to the integer at `key` if, and only
   * if, the op applies. Throws `BarrierFailure` when the key does not exist or a decrease would go
   * under `min`, writing nothing (a retry runs again). Resolves to the outcome; `applied` carries the new value.
   */
  adjust(barrier: Barrier, key: string, delta: number, options?: AdjustOptions): Promise<BarrierResult<number>>;
  /**
   * Prepares your Lua for `run`: `body` runs as a function of your `KEYS` and `ARGV` only when the op
   * applies, and may `return failure('why')` to refuse (`BarrierFailure`, nothing written). Make
   * every check before the first write: Redis never undoes a script's writes. Sends nothing.
   */
  script(body: string): RedisScript;
  /**
   * Runs a prepared script atomically with the barrier keys, by SHA (`EVALSHA`; on `NOSCRIPT`, after
   * a restart or `SCRIPT FLUSH`, by its text, which loads it again). Resolves to the outcome;
   * `applied` carries what your body returned (as Redis converts it; `nil` and `false` are `null`).
   * An error your body raises or returns (`redis.error_reply`) is thrown unchanged, with no barrier key written.
   */
  run<T = unknown>(barrier: Barrier, script: RedisScript, keys: readonly string[], args?: readonly (string | number)[]): Promise<BarrierResult<T>>;
  /**
   * The 2-phase message check-back (DTM's `RedisQueryPrepared`): marks an absent message key
   * `rollback` so that local transaction can never commit later, then reads it.
   * @param key - a business key of the message's local transaction, for its hash tag (Redis Cluster).
   */
  queryPrepared(barrier: Barrier, key?: string): Promise<'committed' | 'rolledback'>;
  /** Runs the `maxmemory-policy` check now (see `evictionCheck`); every call runs it first anyway, once. */
  ready(): Promise<void>;
}

const ONE_DAY_MS = 86_400_000;
const DEFAULT_TTL = '7d';
/** The value DTM's Go client gives the key an op writes for itself. */
const DTM_OWN_VALUE = 'op';
/** Server errors a later retry gets past: a script or load in progress, a failover, a cluster resharding. */
const RETRYABLE_REPLY = /^(BUSY|LOADING|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS) /;

/** The barrier on a client the adapters have wrapped. Checks the options now; sends nothing until the first call. */
export function defineRedisBarrier(connection: RedisConnection, options: RedisBarrierOptions = {}): RedisBarrier {
  const { prefix = '', ttl = DEFAULT_TTL, force = false, evictionCheck = 'refuse', ...hooks } = options;
  checkPrefix(prefix);
  const ttlMs = parseDuration(ttl, 'ttl');
  if (ttlMs < ONE_DAY_MS && !force) {
    throw new BarrierConfigError(
      `a ttl of ${ttlMs} ms is under one day: barrier keys must outlast the coordinator's longest retry window, ` +
        `or a late action would find no key and apply. Pass force: true if you are sure.`,
      { code: 'ERR_TXBARRIER_RETENTION' },
    );
  }
  if (!['refuse', 'warn', 'off'].includes(evictionCheck)) {
    throw new BarrierConfigError(`evictionCheck must be 'refuse', 'warn' or 'off'; got ${JSON.stringify(evictionCheck)}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  const ttlSeconds = String(Math.max(1, Math.ceil(ttlMs / 1000)));
  const target: CallTarget = {
    hooks,
    table: prefix === '' ? 'barrier keys' : `${prefix}*`,
    dialect: {
      name: 'redis',
      isRetryable: (error) => connection.lostConnection(error) || RETRYABLE_REPLY.test(messageOf(error)),
      isMissingTable: () => false,
    },
  };

  let checked: Promise<void> | undefined;
  let warned = false;
  const warn = (message: string) => {
    if (warned) return;
    warned = true;
    if (hooks.logger?.warn) hooks.logger.warn({ evictionCheck }, message);
    else process.emitWarning(message, 'TxbarrierRedisWarning');
  };
  const checkEviction = async () => {
    let policy: string | undefined;
    try {
      policy = policyOf(await connection.send(['CONFIG', 'GET', 'maxmemory-policy'], undefined));
    } catch (error) {
      if (connection.lostConnection(error)) throw error;
      warn(
        `txbarrier/redis: could not read maxmemory-policy (${messageOf(error)}); a managed Redis may forbid CONFIG GET. ` +
          `Unless it is noeviction, an evicted barrier key lets a late action apply. Check it in the provider's console, then pass evictionCheck: 'off'.`,
      );
      return;
    }
    if (policy === 'noeviction') return;
    const message =
      `txbarrier/redis: maxmemory-policy is ${policy ?? 'unreadable'}, not noeviction: Redis may evict barrier keys ` +
      `(volatile-* policies pick exactly such keys, which carry a TTL), and a late action would then find none and apply. ` +
      `Run CONFIG SET maxmemory-policy noeviction (and in redis.conf)`;
    if (evictionCheck === 'warn') return warn(`${message}.`);
    throw new BarrierConfigError(`${message}, or pass evictionCheck: 'warn' to accept the risk.`, { code: 'ERR_TXBARRIER_REDIS_EVICTION' });
  };
  const ready = () => {
    if (evictionCheck === 'off') return Promise.resolve();
    checked ??= checkEviction().catch((error: unknown) => {
      checked = undefined; // a fixed policy or a restored connection is seen on the next call
      throw error;
    });
    return checked;
  };

  /** EVALSHA, or EVAL when the server has not (or no longer) got the script: both route by the first key. */
  const evaluate = async (script: RedisScript, keys: readonly string[], args: readonly string[]) => {
    const rest = [String(keys.length), ...keys, ...args];
    try {
      return await connection.send(['EVALSHA', script.sha, ...rest], keys[0]);
    } catch (error) {
      if (!messageOf(error).startsWith('NOSCRIPT')) throw crossSlot(error, keys);
    }
    try {
      return await connection.send(['EVAL', script.text, ...rest], keys[0]);
    } catch (error) {
      throw crossSlot(error, keys);
    }
  };

  // Async, so bad input rejects like every other failure of a call instead of throwing at it.
  const run = async <T>(barrier: Barrier, script: RedisScript, keys: readonly string[], args: readonly (string | number)[] = []): Promise<BarrierResult<T>> => {
    checkScript(script);
    const businessKeys = checkKeys(keys);
    const businessArgs = checkArgs(args);
    return callAtomically<T>(barrier, target, async (barrierId) => {
      await ready();
      const originOp = ORIGIN_OF[barrier.op];
      const names = barrierKeyNames(prefix, { gid: barrier.gid, branchId: barrier.branchId, op: barrier.op, barrierId }, originOp, businessKeys[0]);
      const barrierKeys = names.origin === undefined ? [names.own] : [names.own, names.origin];
      const reply = await evaluate(script, [...businessKeys, ...barrierKeys], [String(businessKeys.length), barrier.op, ttlSeconds, ...businessArgs]);
      return readReply<T>(barrier, originOp !== undefined, reply);
    });
  };

  const adjustScript = prepare(ADJUST_BODY);
  const queryPreparedScript: RedisScript = { text: QUERY_PREPARED_SCRIPT, sha: sha1(QUERY_PREPARED_SCRIPT) };
  return {
    async adjust(barrier, key, delta, { min = 0 } = {}) {
      if (!Number.isSafeInteger(delta)) throw inputError(`delta must be a safe integer; got ${String(delta)}`);
      if (min !== null && !Number.isSafeInteger(min)) throw inputError(`min must be a safe integer or null; got ${String(min)}`);
      return run<number>(barrier, adjustScript, [key], [String(delta), min === null ? '' : String(min)]);
    },
    script: prepare,
    run,
    async queryPrepared(barrier, key) {
      if (key !== undefined) checkKeys([key]);
      const { own } = barrierKeyNames(prefix, { gid: barrier.gid, ...MESSAGE_KEY }, undefined, key);
      try {
        await ready();
        const reason = await evaluate(queryPreparedScript, [own], [ttlSeconds]);
        return reason === 'rollback' ? 'rolledback' : 'committed';
      } catch (error) {
        if (target.dialect.isRetryable(error)) throw new BarrierOngoing('Redis did not answer the check-back; retry later', { cause: error });
        throw error;
      }
    },
    ready,
  };
}

/** The reply of `barrierScript`, read with the decision table. */
function readReply<T>(barrier: Barrier, compensation: boolean, reply: unknown): BarrierResult<T> {
  if (!Array.isArray(reply)) return unexpected(reply);
  const [kind, first, second, value] = reply as unknown[];
  if (kind === REPLY.failure) throw new BarrierFailure(String(first));
  if (kind === REPLY.taken && typeof first === 'string') {
    if (barrier.op === 'msg') throw new BarrierDuplicateMessage(barrier.gid, first !== 'rollback');
    return { outcome: decideForward(barrier.op, first === DTM_OWN_VALUE ? barrier.op : first) };
  }
  if (kind !== REPLY.done || (first !== 0 && first !== 1) || (second !== 0 && second !== 1)) return unexpected(reply);
  const outcome = compensation ? decideCompensation({ own: first === 1, origin: second === 1 }) : 'applied';
  return outcome === 'applied' ? { outcome, value: (value ?? null) as T } : { outcome };
}

function unexpected(reply: unknown): never {
  throw new BarrierConfigError(`unexpected reply from the barrier script: ${JSON.stringify(reply)}`, { code: 'ERR_TXBARRIER_DRIVER_RESULT' });
}

function prepare(body: string): RedisScript {
  if (typeof body !== 'string' || body.trim() === '') throw inputError('a script body must be a non-empty string of Lua');
  const text = barrierScript(body);
  return { text, sha: sha1(text) };
}

function checkScript(script: RedisScript): void {
  if (typeof script?.text !== 'string' || script.sha !== sha1(script.text)) throw inputError('run takes a script made by script(body)');
}

function checkKeys(keys: readonly string[]): readonly string[] {
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string' && key !== '')) {
    throw inputError(`keys must be an array of non-empty strings; got ${JSON.stringify(keys)}`);
  }
  return keys;
}

function checkArgs(args: readonly (string | number)[]): string[] {
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string' || (typeof arg === 'number' && Number.isFinite(arg)))) {
    throw inputError(`args must be an array of strings and finite numbers; got ${JSON.stringify(args)}`);
  }
  return args.map(String);
}

function inputError(message: string): BarrierConfigError {
  return new BarrierConfigError(message, { code: 'ERR_TXBARRIER_REDIS_INPUT' });
}

/** A `CROSSSLOT` reply as an error naming the fix; any other error unchanged. */
function crossSlot(error: unknown, keys: readonly string[]): unknown {
  if (!messageOf(error).startsWith('CROSSSLOT')) return error;
  return new BarrierConfigError(
    `the keys of one barrier call must share a Redis Cluster slot; these do not: ${keys.join(', ')}. Give the business keys ` +
      `one hash tag, e.g. {account:42}:balance (barrier keys then take that tag); a gid holding another {tag} needs the business keys to carry it.`,
    { code: 'ERR_TXBARRIER_REDIS_CROSSSLOT', cause: error },
  );
}

/** `CONFIG GET`'s reply: a `[name, value]` array (RESP2), or a map (RESP3) as an object or a `Map`. */
function policyOf(reply: unknown): string | undefined {
  const value = Array.isArray(reply)
    ? reply[1]
    : reply instanceof Map
      ? reply.get('maxmemory-policy')
      : reply !== null && typeof reply === 'object'
        ? (reply as Record<string, unknown>)['maxmemory-policy']
        : undefined;
  return typeof value === 'string' ? value : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
