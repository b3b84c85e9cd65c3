/**
 * The Lua that runs the barrier and the business update as one Redis script. Redis has no
 * interactive transactions and no rollback, so the script reads first, decides, runs the business
 * part only when the op applies, and writes the barrier keys last: a business part that refuses
 * (or raises) leaves no barrier key behind, as a rolled-back SQL transaction leaves no row.
 *
 * Which compensation applies is generated from `COMPENSATION_TABLE` (decision.ts), the table the
 * TypeScript side decides the reported outcome with, so the script and the outcome cannot disagree.
 */
import { createHash } from 'node:crypto';
import { COMPENSATION_TABLE } from '../barrier/decision.js';

/** `ARGV` before the business arguments: key count, the op (each key's value), the TTL in seconds. */
const BARRIER_ARGS = 3;

/** The script's first reply word: what happened. */
export const REPLY = { done: 'done', taken: 'taken', failure: 'failure' } as const;

// `own` / `origin` in the table: that key was free, so its write went in.
const appliesWhen = COMPENSATION_TABLE.filter((row) => row.outcome === 'applied')
  .map((row) => `(${row.own ? '' : 'not '}ownFree and ${row.origin ? '' : 'not '}originFree)`)
  .join(' or ');

/**
 * A whole script around `body`, the business part. `body` runs as a function of its own `KEYS` and
 * `ARGV` (the caller's keys and arguments only), may `return failure(message)` to refuse (a
 * `BarrierFailure`, nothing written), and returns the call's value.
 */
export function barrierScript(body: string): string {
  return `-- txbarrier: barrier keys and business update in one script (docs/redis.md)
local n = tonumber(ARGV[1])
local own, origin, op, ttl = KEYS[n + 1], KEYS[n + 2], ARGV[2], ARGV[3]
local refused = {}
local function failure(message)
  refused.message = tostring(message)
  return refused
end
local function business(KEYS, ARGV)
${body}
end
local written = redis.call('GET', own)
local ownFree = written == false
local originFree = origin ~= nil and redis.call('EXISTS', origin) == 0
local applies
if origin == nil then
  if not ownFree then return {'${REPLY.taken}', written} end
  applies = true
else
  applies = ${appliesWhen}
end
local value
if applies then
  local keys, args = {}, {}
  for i = 1, n do keys[i] = KEYS[i] end
  for i = ${BARRIER_ARGS + 1}, #ARGV do args[#args + 1] = ARGV[i] end
  value = business(keys, args)
  if value == refused then return {'${REPLY.failure}', refused.message} end
  if type(value) == 'table' and value.err then return value end
end
redis.call('SET', own, op, 'NX', 'EX', ttl)
if origin ~= nil then redis.call('SET', origin, op, 'NX', 'EX', ttl) end
return {'${REPLY.done}', ownFree and 1 or 0, originFree and 1 or 0, value}
`;
}

/**
 * DTM's `RedisCheckAdjustAmount` as a business part: `INCRBY` of an integer key by `ARGV[1]`, refused
 * when the key is missing, or when a decrease would leave it under `ARGV[2]` (empty: no floor).
 * Its reads come first, so a refusal or an error writes nothing.
 */
export const ADJUST_BODY = `local current = redis.call('GET', KEYS[1])
if current == false then return failure(KEYS[1] .. ' does not exist') end
local value, delta = tonumber(current), tonumber(ARGV[1])
if value == nil then return redis.error_reply('ERR txbarrier adjust: the value of ' .. KEYS[1] .. ' is not a number') end
if ARGV[2] ~= '' and delta < 0 and value + delta < tonumber(ARGV[2]) then
  return failure(KEYS[1] .. ' holds ' .. current .. '; adding ' .. ARGV[1] .. ' would leave it under ' .. ARGV[2])
end
return redis.call('INCRBY', KEYS[1], ARGV[1])`;

/** The 2-phase message check-back (DTM's `RedisQueryPrepared`): marks an absent message key `rollback`, then reads it. */
export const QUERY_PREPARED_SCRIPT = `redis.call('SET', KEYS[1], 'rollback', 'NX', 'EX', ARGV[1])
return redis.call('GET', KEYS[1])`;

/** A script's SHA1, as `SCRIPT LOAD` answers and `EVALSHA` takes it. */
export function sha1(script: string): string {
  return createHash('sha1').update(script, 'utf8').digest('hex');
}
