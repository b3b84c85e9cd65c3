import { createHash } from 'node:crypto';

/** Why an `Idempotency-Key` header was refused: missing, or not a valid key. */
export type KeyProblem = { kind: 'missing' } | { kind: 'invalid'; detail: string };

// RFC 8941 token characters: RFC 9110's tchar, ":" and "/". Any of them may come first, since bare
// keys from Stripe-style clients are often UUIDs, which can start with a digit.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]+$/;

/**
 * The key inside an `Idempotency-Key` header: an RFC 8941 sf-string (`"…"`, printable ASCII, with
 * `\"` and `\\` the only escapes), surrounded by nothing but spaces. With `acceptBare`, also the
 * characters of an RFC 8941 token unquoted, the same key as its quoted form (`abc` is `"abc"`).
 * Node joins repeated headers with `, `, which then fails here as a list: a request must carry one key.
 */
export function parseIdempotencyKey(header: string | readonly string[] | undefined, maxLength: number, acceptBare = false): string | KeyProblem {
  if (header === undefined) return { kind: 'missing' };
  if (typeof header !== 'string') {
    return header.length === 0 ? { kind: 'missing' } : { kind: 'invalid', detail: 'send exactly one Idempotency-Key header' };
  }
  // Trimmed and scanned by index, the key sliced out in runs: a regex and a string built a character at
  // a time cost every request a few microseconds (issue #33's profile).
  let start = 0;
  let end = header.length;
  while (start < end && header.charCodeAt(start) === 0x20) start++;
  while (end > start && header.charCodeAt(end - 1) === 0x20) end--;
  if (start === end) return { kind: 'missing' };
  const text = start === 0 && end === header.length ? header : header.slice(start, end);
  if (text[0] !== '"') {
    if (!acceptBare) return invalid('must be a quoted string (an RFC 8941 sf-string), e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324"');
    if (!TOKEN.test(text)) return invalid('must be one quoted string or one token of letters, digits and !#$%&\'*+-.^_`|~:/');
    if (text.length > maxLength) return invalid(`must be at most ${maxLength} characters`);
    return text;
  }
  let key = '';
  let run = 1;
  for (let i = 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5c) {
      const next = text[i + 1];
      if (next !== '"' && next !== '\\') return invalid('may escape only " and \\');
      key += text.slice(run, i) + next;
      run = ++i + 1;
    } else if (code === 0x22) {
      if (i !== text.length - 1) return invalid('must be one quoted string with nothing after it (send exactly one key)');
      key += text.slice(run, i);
      if (key.length === 0) return invalid('must not be empty');
      if (key.length > maxLength) return invalid(`must be at most ${maxLength} characters`);
      return key;
    } else if (code < 0x20 || code > 0x7e) {
      return invalid('may hold only printable ASCII characters');
    }
  }
  return invalid('is missing its closing quote');
}

function invalid(detail: string): KeyProblem {
  return { kind: 'invalid', detail: `the Idempotency-Key header ${detail}` };
}

/**
 * What a repeat must match: the method, the request target (path and query, as received) and a
 * SHA-256 of the body bytes. Hex, 64 characters.
 */
export function requestFingerprint(method: string, target: string, body: Uint8Array | string | undefined): string {
  const bodyDigest = createHash('sha256')
    .update(body ?? '')
    .digest('hex');
  return createHash('sha256').update(`${method.toUpperCase()} ${target}\n${bodyDigest}`).digest('hex');
}

/**
 * JSON with object keys sorted at every level: the canonical form a front hashes when the body
 * was parsed before the raw bytes could be kept. Equal for `{"a":1,"b":2}` and `{"b":2,"a":1}`.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner) && !(inner instanceof Uint8Array)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  ) ?? '';
}
