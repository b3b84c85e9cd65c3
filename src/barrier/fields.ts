import { BarrierInputError, type FieldProblem } from '../errors.js';

/** Which ops each transaction type has; anything else is refused rather than guessed at. */
export const OPS_BY_TRANS_TYPE = {
  saga: ['action', 'compensate'],
  tcc: ['try', 'confirm', 'cancel'],
  xa: ['action', 'commit', 'rollback'],
  workflow: ['action', 'rollback'],
  // `msg` guards the message's local transaction; DTM delivers the message's branches as `action`.
  msg: ['msg', 'action'],
} as const;

export type TransType = keyof typeof OPS_BY_TRANS_TYPE;
export type Op = (typeof OPS_BY_TRANS_TYPE)[TransType][number];

/** The four fields that name one branch operation of one global transaction. */
export interface BarrierFields {
  transType: TransType;
  gid: string;
  branchId: string;
  op: Op;
}

/** Wire names (query parameters; headers add a `dtm-` prefix) and the column widths they must fit. */
const WIRE = [
  { key: 'transType', name: 'trans_type', maxLength: 45 },
  { key: 'gid', name: 'gid', maxLength: 128 },
  { key: 'branchId', name: 'branch_id', maxLength: 128 },
  { key: 'op', name: 'op', maxLength: 45 },
] as const;

/** The four wire names, in the order problems are listed. */
export const WIRE_NAMES: readonly string[] = WIRE.map(({ name }) => name);

// C0 controls, DEL and C1 controls: they have no business in an id and break logs and SQL tools.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// With the u flag a paired surrogate reads as one code point, so only unpaired halves match Cs.
const LONE_SURROGATE = /\p{Cs}/u;
// Header bytes arrive as latin1 characters: anything past ASCII is a UTF-8 value misread.
const NON_ASCII = /[^\u0000-\u007f]/;

/**
 * A value a reader found but could not turn into text faithfully (bad percent-encoding, a
 * repeated or non-ASCII header): the reader says why, and the field is refused with that.
 */
class Unreadable {
  constructor(readonly problem: string) {}
}

/** A value as it arrived: `undefined` if absent, an array if the parameter was repeated. */
type Raw = unknown;

/** Reads one wire field by name. */
export type FieldReader = (wireName: string) => Raw;

/**
 * Checks the four raw values (keyed by wire name) and returns the fields, or throws
 * `BarrierInputError` listing every problem at once.
 */
export function parseFields(read: FieldReader): BarrierFields {
  const problems: FieldProblem[] = [];
  const values: Record<string, string> = {};
  for (const { key, name, maxLength } of WIRE) {
    const value = read(name);
    const problem = checkValue(value, maxLength);
    if (problem) problems.push({ field: name, problem });
    else values[key] = value as string;
  }
  // Own properties only: `toString` or `__proto__` must be an unknown type, not a method of the table.
  if (values.transType !== undefined && !Object.hasOwn(OPS_BY_TRANS_TYPE, values.transType)) {
    problems.push({ field: 'trans_type', problem: `is not one of ${Object.keys(OPS_BY_TRANS_TYPE).join(', ')}` });
  } else if (values.transType !== undefined && values.op !== undefined) {
    const ops: readonly string[] = OPS_BY_TRANS_TYPE[values.transType as TransType];
    if (!ops.includes(values.op)) {
      problems.push({ field: 'op', problem: `is not an op of ${values.transType} (${ops.join(', ')})` });
    }
  }
  if (problems.length > 0) throw new BarrierInputError(problems);
  return values as unknown as BarrierFields;
}

/**
 * Why `value` cannot be stored faithfully as part of a key on every engine, or `undefined`: a
 * control character, or a lone surrogate (stored as U+FFFD, so two different values could
 * become one key).
 */
export function textProblem(value: string): string | undefined {
  if (CONTROL.test(value)) return 'contains control characters';
  if (LONE_SURROGATE.test(value)) return 'is not well-formed Unicode';
  return undefined;
}

function checkValue(value: Raw, maxLength: number): string | undefined {
  if (value === undefined || value === null) return 'is missing';
  if (value instanceof Unreadable) return value.problem;
  if (Array.isArray(value)) return 'is repeated';
  if (typeof value !== 'string') return 'is not a string';
  if (value.length === 0) return 'is empty';
  const problem = textProblem(value);
  if (problem) return problem;
  // MySQL's collations pad with spaces, so 'g1' and 'g1 ' would be one key there.
  if (value.endsWith(' ')) return 'ends with a space';
  // Column widths count characters (code points), never more than UTF-16 units: count them only when it could matter.
  if (value.length > maxLength) {
    const length = [...value].length;
    if (length > maxLength) return `is ${length} characters long; at most ${maxLength} fit`;
  }
  return undefined;
}

/**
 * Reads a query: a query string (with or without `?`), a `URLSearchParams` or a parsed object.
 * Prefer the raw string: it alone is decoded strictly here, so `%FF` or `%zz` is refused instead
 * of becoming U+FFFD or staying literal (either would let two different ids share one key).
 */
export function queryReader(query: URLSearchParams | string | Record<string, unknown>): FieldReader {
  if (typeof query === 'string') return rawQueryReader(query);
  if (query instanceof URLSearchParams) {
    const params = query;
    return (name) => {
      const all = params.getAll(name);
      return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
    };
  }
  if (query === null || typeof query !== 'object') {
    throw new TypeError('Barrier.fromQuery expects URLSearchParams, a query string or an object');
  }
  const object = query;
  return (name) => (Object.hasOwn(object, name) ? object[name] : undefined);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The barrier's four parameters of a raw query string, split as `application/x-www-form-urlencoded`
 * is (`&`, the first `=`, `+` for space), each value decoded strictly. Other parameters are never decoded.
 */
function rawQueryReader(query: string): FieldReader {
  const found = new Map<string, string[]>();
  // One scan by index (no array of pairs); a name is decoded only when it carries an escape, since
  // one without `%` or `+` decodes to itself and the four names are ASCII.
  for (let start = query.startsWith('?') ? 1 : 0; start < query.length; ) {
    const ampersand = query.indexOf('&', start);
    const end = ampersand < 0 ? query.length : ampersand;
    const equals = query.indexOf('=', start);
    const nameEnd = equals < 0 || equals > end ? end : equals;
    const raw = query.slice(start, nameEnd);
    const name = WIRE_NAMES.includes(raw) ? raw : raw.includes('%') || raw.includes('+') ? decodeComponent(raw) : undefined;
    if (typeof name === 'string' && WIRE_NAMES.includes(name)) {
      const value = nameEnd === end ? '' : query.slice(nameEnd + 1, end);
      const values = found.get(name);
      if (values) values.push(value);
      else found.set(name, [value]);
    }
    start = end + 1;
  }
  return (name) => {
    const values = found.get(name);
    if (!values) return undefined;
    if (values.length > 1) return values;
    return decodeComponent(values[0]!);
  };
}

const ESCAPES = /%([0-9a-fA-F]{2})/g;

/** One encoded name or value, or `Unreadable` if its percent-escapes are malformed or not UTF-8. */
function decodeComponent(encoded: string): string | Unreadable {
  const text = encoded.includes('+') ? encoded.replaceAll('+', ' ') : encoded;
  // Node hands over raw bytes of a request line as latin1, so an unescaped UTF-8 value would
  // read differently here than through a URL parser that escapes it first.
  if (NON_ASCII.test(text)) return new Unreadable('is not percent-encoded');
  if (!text.includes('%')) return text;
  // A stray `%` would stay literal in URLSearchParams, making `%zz` and `%25zz` one id.
  if (text.replace(ESCAPES, '').includes('%')) return new Unreadable('is not valid percent-encoding');
  const bytes = new Uint8Array(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '%') {
      bytes[length++] = Number.parseInt(text.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      bytes[length++] = text.charCodeAt(i);
    }
  }
  try {
    return strictUtf8.decode(bytes.subarray(0, length));
  } catch {
    return new Unreadable('is not valid UTF-8');
  }
}

/**
 * Reads `dtm-*` headers from a fetch `Headers` or a Node headers object, names case-insensitively.
 * HTTP joins a repeated header with commas (Node and `Headers` both do), so a value with a comma is
 * refused as repeated, like two keys differing only in case; a value past ASCII is refused too,
 * since HTTP carries header bytes as latin1 and the same gid would then differ from the query's.
 */
export function headerReader(headers: Headers | Record<string, unknown>): FieldReader {
  let get: (name: string) => unknown;
  if (typeof Headers !== 'undefined' && headers instanceof Headers) {
    const h = headers;
    get = (name) => h.get(name) ?? undefined;
  } else {
    if (headers === null || typeof headers !== 'object') {
      throw new TypeError('Barrier.fromHeaders expects Headers or a headers object');
    }
    const byName = new Map<string, unknown[]>();
    for (const [key, value] of Object.entries(headers)) {
      const name = key.toLowerCase();
      if (!name.startsWith('dtm-') || value === undefined) continue;
      byName.set(name, [...(byName.get(name) ?? []), value]);
    }
    get = (name) => {
      const values = byName.get(name);
      return values === undefined ? undefined : values.length > 1 ? values : values[0];
    };
  }
  return (name) => {
    const value = get(`dtm-${name}`);
    if (typeof value !== 'string') return value;
    if (value.includes(',')) return new Unreadable('is repeated');
    if (NON_ASCII.test(value)) return new Unreadable('is not ASCII; send a non-ASCII value in the query instead');
    return value;
  };
}

/** Fields given directly in code, checked by the same rules as the wire. */
export function objectReader(fields: Record<string, unknown>): FieldReader {
  const byWireName: Record<string, unknown> = {};
  for (const { key, name } of WIRE) byWireName[name] = fields?.[key];
  return (name) => byWireName[name];
}
