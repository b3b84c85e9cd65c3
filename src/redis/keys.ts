/**
 * The names of the barrier keys in Redis. Once keys are written under a form, that form is a storage
 * format: a retry delivered after an upgrade must find the keys its first delivery wrote.
 *
 * DTM's Go client names a barrier key `<gid>-<branch_id>-<op>-<barrier_id>` (no prefix). txbarrier
 * writes that same name whenever it can, so a service moved from DTM's client keeps its barriers:
 * - `%` and `-` inside the branch id are escaped (`%25`, `%2D`). DTM's branch ids (`01`, `02`, …) have
 *   neither, so theirs are unchanged, and a name splits one way only from the right (barrier id, op,
 *   branch id without `-`, the rest is the gid): `("a-b", "c")` and `("a", "b-c")` never meet.
 * - In Redis Cluster a script's keys must share a slot. When the business key has a hash tag `{t}`
 *   and the name above would not hash by `t` already (DTM's advice is to put the tag in the gid),
 *   the name gets `{t}` and a U+001F separator in front. No gid or branch id can contain U+001F
 *   (barrier fields refuse control characters), so a tagged name never equals an untagged one.
 */
import { BarrierConfigError } from '../errors.js';

/** The separator after an added hash tag: a character no barrier field may contain. */
const TAG_SEPARATOR = '\u001f';

/**
 * Redis Cluster's hash tag of a key: what lies between the first `{` and the first `}` after it, if
 * that is not empty; else `undefined` (the whole key is hashed).
 */
export function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

/** The names one barrier call reads and writes. */
export interface BarrierKeyNames {
  /** The key of the op itself. */
  own: string;
  /** For a compensation, the key of the op it undoes; else `undefined`. */
  origin: string | undefined;
}

/**
 * The barrier keys of one call, placed in the slot of `businessKey` (see above).
 * @param prefix - the store's key prefix (no braces, no control characters: checked when the store is made).
 */
export function barrierKeyNames(
  prefix: string,
  call: { gid: string; branchId: string; op: string; barrierId: string },
  originOp: string | undefined,
  businessKey: string | undefined,
): BarrierKeyNames {
  const base = `${prefix}${call.gid}-${call.branchId.replace(/%/g, '%25').replace(/-/g, '%2D')}-`;
  const tag = businessKey === undefined ? undefined : hashTag(businessKey);
  // The tag of `base` decides the slot of every name built on it: op and barrier id hold no braces.
  const head = tag === undefined || hashTag(base) === tag ? base : `${prefix}{${tag}}${TAG_SEPARATOR}${base.slice(prefix.length)}`;
  return { own: `${head}${call.op}-${call.barrierId}`, origin: originOp === undefined ? undefined : `${head}${originOp}-${call.barrierId}` };
}

/** Checks a store's key prefix: braces would move its keys' slot, control characters would break the names' uniqueness. */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || /[{}\u0000-\u001f\u007f]/.test(prefix)) {
    throw new BarrierConfigError(`prefix must be a string without braces or control characters; got ${JSON.stringify(prefix)}`, {
      code: 'ERR_TXBARRIER_OPTION',
    });
  }
  return prefix;
}
