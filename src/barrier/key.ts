/**
 * How an identity that is not a DTM branch (a message and where it came from, an engine's step)
 * becomes a barrier key column. One module, because once rows are written under a form, that form
 * is a storage format: a message committed under it and redelivered later must map to the same key.
 *
 * - A value is stored as it is when it fits its column, contains no `~` and nothing a barrier field
 *   refuses (control characters, a trailing space).
 * - Anything else is stored as a readable prefix, `~`, and the base64url SHA-256 of the whole value
 *   (43 characters). Every verbatim value lacks `~` and every hashed one has it, so no verbatim value
 *   can equal a hashed one, and two long values that share a prefix stay apart. Never truncated.
 * - Parts are joined with `/`, after `%` and `/` inside each part are escaped (`%25`, `%2F`), so
 *   `("a/b", "c")` and `("a", "b/c")` never meet.
 */
import { createHash } from 'node:crypto';
import { BarrierInputError } from '../errors.js';

/** The width of the `gid` and `branch_id` columns, in characters. */
export const KEY_COLUMN_WIDTH = 128;

const HASH_MARK = '~';
const HASH_LENGTH = 43; // base64url of 32 bytes, unpadded
// What a barrier field refuses (see fields.ts), and the mark itself: such values are hashed.
const NOT_VERBATIM = /[\u0000-\u001f\u007f-\u009f~]|\s$/;
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * One identity as a key column: itself when it can be, else `prefix~sha256`. Throws
 * `BarrierInputError` for an empty value, or one with an unpaired surrogate (it would hash like
 * U+FFFD, so two ids could share a key).
 *
 * @param field - the column's wire name, used in the error (`gid` or `branch_id`).
 */
export function keyPart(value: string, field = 'gid', width = KEY_COLUMN_WIDTH): string {
  if (typeof value !== 'string' || value === '') {
    throw new BarrierInputError([{ field, problem: typeof value === 'string' ? 'is empty' : 'is not a string' }]);
  }
  if (LONE_SURROGATE.test(value)) throw new BarrierInputError([{ field, problem: 'is not well-formed Unicode' }]);
  if (!NOT_VERBATIM.test(value) && (value.length <= width || [...value].length <= width)) return value;
  const digest = createHash('sha256').update(value, 'utf8').digest('base64url');
  const prefix = [...value]
    .slice(0, width - HASH_LENGTH - HASH_MARK.length)
    .join('')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '_');
  return `${prefix}${HASH_MARK}${digest}`;
}

/** Several identities as one key column: escaped, joined with `/`, then fitted as `keyPart` does. */
export function compositeKey(parts: readonly string[], field = 'branch_id', width = KEY_COLUMN_WIDTH): string {
  if (parts.length === 0) throw new BarrierInputError([{ field, problem: 'has no parts' }]);
  const escaped = parts.map((part) => {
    if (typeof part !== 'string' || part === '') {
      throw new BarrierInputError([{ field, problem: `has an ${typeof part === 'string' ? 'empty' : 'invalid'} part` }]);
    }
    return part.replace(/%/g, '%25').replace(/\//g, '%2F');
  });
  return keyPart(escaped.join('/'), field, width);
}
