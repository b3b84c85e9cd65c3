import { BarrierInputError, type FieldProblem } from './errors.js';

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

// C0 controls, DEL and C1 controls: they have no business in an id and break logs and SQL tools.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// With the u flag a paired surrogate reads as one code point, so only unpaired halves match Cs.
const LONE_SURROGATE = /\p{Cs}/u;

/** A value as it arrived: `undefined` if absent, an array if the parameter was repeated. */
type Raw = unknown;

/**
 * Checks the four raw values (keyed by wire name) and returns the fields, or throws
 * `BarrierInputError` listing every problem at once.
 */
export function parseFields(read: (wireName: string) => Raw): BarrierFields {
  const problems: FieldProblem[] = [];
  const values: Record<string, string> = {};
  for (const { key, name, maxLength } of WIRE) {
    const problem = checkValue(read(name), maxLength);
    if (problem) problems.push({ field: name, problem });
    else values[key] = read(name) as string;
  }
  if (values.transType !== undefined && !(values.transType in OPS_BY_TRANS_TYPE)) {
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

function checkValue(value: Raw, maxLength: number): string | undefined {
  if (value === undefined || value === null) return 'is missing';
  if (Array.isArray(value)) return 'is repeated';
  if (typeof value !== 'string') return 'is not a string';
  if (value.length === 0) return 'is empty';
  if (CONTROL.test(value)) return 'contains control characters';
  // A lone surrogate is stored as U+FFFD, so two different ids could become one key.
  if (LONE_SURROGATE.test(value)) return 'is not well-formed Unicode';
  // MySQL's collations pad with spaces, so 'g1' and 'g1 ' would be one key there.
  if (value.endsWith(' ')) return 'ends with a space';
  // Column widths count characters (code points), never more than UTF-16 units: count them only when it could matter.
  if (value.length > maxLength) {
    const length = [...value].length;
    if (length > maxLength) return `is ${length} characters long; at most ${maxLength} fit`;
  }
  return undefined;
}

/** Reads a query: a `URLSearchParams`, a query string (with or without `?`) or a parsed object. */
export function queryReader(query: URLSearchParams | string | Record<string, unknown>): (name: string) => Raw {
  if (typeof query === 'string') query = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
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
  return (name) => (Object.prototype.hasOwnProperty.call(object, name) ? object[name] : undefined);
}

/** Reads `dtm-*` headers from a fetch `Headers` or a Node headers object, names case-insensitively. */
export function headerReader(headers: Headers | Record<string, unknown>): (name: string) => Raw {
  if (typeof Headers !== 'undefined' && headers instanceof Headers) {
    const h = headers;
    return (name) => h.get(`dtm-${name}`) ?? undefined;
  }
  if (headers === null || typeof headers !== 'object') {
    throw new TypeError('Barrier.fromHeaders expects Headers or a headers object');
  }
  const lowerCased = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return (name) => lowerCased.get(`dtm-${name}`);
}

/** Fields given directly in code, checked by the same rules as the wire. */
export function objectReader(fields: Record<string, unknown>): (name: string) => Raw {
  const byWireName: Record<string, unknown> = {};
  for (const { key, name } of WIRE) byWireName[name] = fields?.[key];
  return (name) => byWireName[name];
}
