import { describe, expect, it } from 'vitest';
import { Barrier, BarrierInputError } from '../../src/index.js';

const valid = { gid: 'g1', trans_type: 'saga', branch_id: '01', op: 'action' };

function problemsOf(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BarrierInputError);
    return Object.fromEntries((error as BarrierInputError).problems.map((p) => [p.field, p.problem]));
  }
  throw new Error('expected BarrierInputError');
}

describe('reading a barrier from a request', () => {
  it('reads a query string, with or without ?, URLSearchParams, and a parsed object alike', () => {
    const sources = [
      '?gid=g1&trans_type=saga&branch_id=01&op=action',
      'gid=g1&trans_type=saga&branch_id=01&op=action',
      new URLSearchParams(valid),
      valid,
    ];
    for (const source of sources) {
      expect({ ...Barrier.fromQuery(source) }).toEqual({ transType: 'saga', gid: 'g1', branchId: '01', op: 'action' });
    }
  });

  it('reads dtm-* headers from a Node headers object, case-insensitively, and from fetch Headers', () => {
    const node = { 'dtm-gid': 'g1', 'DTM-Trans_Type': 'tcc', 'dtm-branch_id': '02', 'dtm-op': 'cancel', host: 'x' };
    expect({ ...Barrier.fromHeaders(node) }).toEqual({ transType: 'tcc', gid: 'g1', branchId: '02', op: 'cancel' });
    const fetchHeaders = new Headers({ 'dtm-gid': 'g2', 'dtm-trans_type': 'msg', 'dtm-branch_id': '00', 'dtm-op': 'msg' });
    expect(Barrier.fromHeaders(fetchHeaders).gid).toBe('g2');
  });

  it('names every bad field at once', () => {
    expect(problemsOf(() => Barrier.fromQuery({ gid: ['a', 'b'], branch_id: '', op: 7 }))).toEqual({
      gid: 'is repeated',
      trans_type: 'is missing',
      branch_id: 'is empty',
      op: 'is not a string',
    });
    expect(problemsOf(() => Barrier.fromQuery('gid=a&gid=b&trans_type=saga&branch_id=01&op=action'))).toEqual({
      gid: 'is repeated',
    });
  });

  it('refuses control characters and values wider than their columns, counting characters not bytes', () => {
    expect(problemsOf(() => Barrier.fromQuery({ ...valid, gid: 'a\nb', branch_id: 'x\u0085' }))).toEqual({
      gid: 'contains control characters',
      branch_id: 'contains control characters',
    });
    expect(problemsOf(() => Barrier.fromQuery({ ...valid, gid: 'g'.repeat(129) })).gid).toMatch(/129 characters.*128/);
    // 128 four-byte characters still fit a varchar(128).
    expect(Barrier.fromQuery({ ...valid, gid: '😀'.repeat(128) }).gid).toHaveLength(256);
    expect(problemsOf(() => Barrier.from({ transType: 'saga', gid: 'g', branchId: 'b'.repeat(129), op: 'action' }))).toHaveProperty('branch_id');
  });

  it('refuses unpaired surrogates and trailing spaces, which databases would fold into another key', () => {
    expect(problemsOf(() => Barrier.fromQuery({ ...valid, gid: 'a\uD800b', branch_id: '01 ' }))).toEqual({
      gid: 'is not well-formed Unicode',
      branch_id: 'ends with a space',
    });
  });

  it("accepts DTM's message branches (trans_type msg, op action) besides the local msg op", () => {
    expect(Barrier.fromQuery({ ...valid, trans_type: 'msg', op: 'action' }).op).toBe('action');
  });

  it('refuses an unknown transaction type, and an op its type does not have', () => {
    expect(problemsOf(() => Barrier.fromQuery({ ...valid, trans_type: 'sagas' })).trans_type).toMatch(/saga, tcc, xa, workflow, msg/);
    expect(problemsOf(() => Barrier.fromQuery({ ...valid, op: 'cancel' })).op).toMatch(/not an op of saga/);
    expect(problemsOf(() => Barrier.fromQuery({ ...valid, trans_type: 'tcc', op: 'compensate' })).op).toMatch(/try, confirm, cancel/);
  });

  it('does not read inherited properties as parameters', () => {
    const query = Object.create({ gid: 'inherited' }) as Record<string, unknown>;
    Object.assign(query, { trans_type: 'saga', branch_id: '01', op: 'action' });
    expect(problemsOf(() => Barrier.fromQuery(query))).toEqual({ gid: 'is missing' });
  });

  it('makes the 2-phase message barrier DTM uses', () => {
    expect({ ...Barrier.forMessage('m1') }).toEqual({ transType: 'msg', gid: 'm1', branchId: '00', op: 'msg' });
  });

  describe('from a raw query string, decoded strictly', () => {
    const query = (gid: string) => `gid=${gid}&trans_type=saga&branch_id=01&op=action`;

    it.each([
      ['%FF', 'is not valid UTF-8'],
      ['%FE', 'is not valid UTF-8'],
      ['%C0%AF', 'is not valid UTF-8'], // overlong '/'
      ['%ED%A0%80', 'is not valid UTF-8'], // an encoded surrogate
      ['%E2%82', 'is not valid UTF-8'], // cut short
      ['%zz', 'is not valid percent-encoding'],
      ['50%', 'is not valid percent-encoding'],
      ['\u00e9', 'is not percent-encoded'], // raw bytes, as Node hands a request line over (latin1)
    ])('refuses gid=x%s, never decoding it to U+FFFD or leaving it literal', (encoded, problem) => {
      expect(problemsOf(() => Barrier.fromQuery(query(`x${encoded}`)))).toEqual({ gid: problem });
    });

    it('decodes what is well-formed: escapes, + for space, four-byte characters, names escaped too', () => {
      expect(Barrier.fromQuery(query('a%2Fb+c%F0%9F%98%80')).gid).toBe('a/b c😀');
      expect(Barrier.fromQuery('g%69d=g1&trans_type=saga&branch_id=01&op=action').gid).toBe('g1');
      // Other parameters are not ours to judge.
      expect(Barrier.fromQuery(`${query('g1')}&note=%FF&%FF=1`).gid).toBe('g1');
    });

    it('splits as a form does: a leading ?, empty pairs, a name without =, = inside a value, + in a name', () => {
      expect({ ...Barrier.fromQuery('?&gid=g=1&&trans_type=saga&branch_id=01&op=action&flag&') }).toEqual({ transType: 'saga', gid: 'g=1', branchId: '01', op: 'action' });
      expect(problemsOf(() => Barrier.fromQuery('gid&trans_type=saga&branch_id=01&op=action'))).toEqual({ gid: 'is empty' });
      expect(problemsOf(() => Barrier.fromQuery('g+id=g1&trans_type=saga&branch_id=01&op=action'))).toEqual({ gid: 'is missing' });
      expect(Barrier.fromQuery('gid=g1&trans_type=saga&branch_id=01&o%70=action').op).toBe('action');
    });

    it('never lets two spellings become one key, nor one spelling two', () => {
      const keys = ['x%FF', 'x%FE', 'x%EF%BF%BD', 'x%25zz', 'x%zz'].map((gid) => {
        try {
          return Barrier.fromQuery(query(gid)).gid;
        } catch {
          return undefined;
        }
      });
      expect(keys).toEqual([undefined, undefined, 'x\uFFFD', 'x%zz', undefined]);
    });

    it('finds a field repeated under an escaped name', () => {
      expect(problemsOf(() => Barrier.fromQuery(`${query('a')}&g%69d=b`))).toEqual({ gid: 'is repeated' });
    });
  });

  describe('prototype names', () => {
    it.each(['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf'])('refuses %s as trans_type and op', (name) => {
      const type = problemsOf(() => Barrier.fromQuery({ ...valid, trans_type: name }));
      expect(type.trans_type).toMatch(/is not one of saga/);
      expect(problemsOf(() => Barrier.fromQuery(`gid=g&trans_type=${name}&branch_id=01&op=${name}`)).trans_type).toMatch(/is not one of/);
      expect(problemsOf(() => Barrier.from({ transType: name, gid: 'g', branchId: '01', op: 'action' })).trans_type).toMatch(/is not one of/);
      expect(problemsOf(() => Barrier.fromHeaders({ 'dtm-gid': 'g', 'dtm-trans_type': name, 'dtm-branch_id': '01', 'dtm-op': 'action' })).trans_type).toMatch(/is not one of/);
      expect(problemsOf(() => Barrier.fromQuery({ ...valid, op: name })).op).toMatch(/is not an op of saga/);
      expect(problemsOf(() => Barrier.from({ transType: 'tcc', gid: 'g', branchId: '01', op: name })).op).toMatch(/is not an op of tcc/);
    });
  });

  describe('headers', () => {
    const node = { 'dtm-gid': 'g1', 'dtm-trans_type': 'saga', 'dtm-branch_id': '01', 'dtm-op': 'action' };

    it('refuses a repeated header, however it arrives joined', () => {
      // Node joins a repeated unknown header with ", "; fetch Headers with ", " too.
      expect(problemsOf(() => Barrier.fromHeaders({ ...node, 'dtm-gid': 'h1, h2' }))).toEqual({ gid: 'is repeated' });
      const joined = new Headers(node);
      joined.append('dtm-gid', 'h2');
      expect(joined.get('dtm-gid')).toBe('g1, h2');
      expect(problemsOf(() => Barrier.fromHeaders(joined))).toEqual({ gid: 'is repeated' });
      expect(problemsOf(() => Barrier.fromHeaders({ ...node, 'dtm-op': ['action', 'action'] }))).toEqual({ op: 'is repeated' });
    });

    it('refuses one name spelt in two cases, instead of silently taking the last', () => {
      expect(problemsOf(() => Barrier.fromHeaders({ ...node, 'DTM-GID': 'g2' }))).toEqual({ gid: 'is repeated' });
    });

    it('refuses a non-ASCII value (HTTP carries it as latin1) and says to use the query', () => {
      const latin1 = Buffer.from('gé', 'utf8').toString('latin1');
      expect(problemsOf(() => Barrier.fromHeaders({ ...node, 'dtm-gid': latin1 })).gid).toMatch(/not ASCII.*query/);
      // The same gid by query is one key: 'gé'.
      expect(Barrier.fromQuery(`gid=g%C3%A9&trans_type=saga&branch_id=01&op=action`).gid).toBe('gé');
    });
  });
});
