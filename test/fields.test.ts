import { describe, expect, it } from 'vitest';
import { Barrier, BarrierInputError } from '../src/index.js';

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
});
