import { describe, expect, it } from 'vitest';
import { Barrier, BarrierInputError, compositeKey, keyPart } from '../src/index.js';

const asBranch = (branchId: string) => Barrier.from({ transType: 'saga', gid: 'g', branchId, op: 'action' });

describe('the key format for identities that are not DTM branches', () => {
  it('keeps a value that fits as it is', () => {
    expect(keyPart('order-42')).toBe('order-42');
    expect(keyPart('x'.repeat(128))).toBe('x'.repeat(128));
    expect(compositeKey(['ledger', 'payments'])).toBe('ledger/payments');
  });

  it('hashes a value that is too long, never truncating it, and the result is a valid field', () => {
    const a = `${'x'.repeat(200)}a`;
    const b = `${'x'.repeat(200)}b`;
    const [ka, kb] = [keyPart(a), keyPart(b)];
    expect(ka).not.toBe(kb);
    expect([...ka].length).toBeLessThanOrEqual(128);
    expect(ka.startsWith('x'.repeat(84))).toBe(true);
    expect(ka).toMatch(/~[A-Za-z0-9_-]{43}$/);
    expect(keyPart(a)).toBe(ka);
    expect(() => asBranch(ka)).not.toThrow();
  });

  it('counts characters, not UTF-16 units', () => {
    const emoji = '😀'.repeat(128);
    expect(keyPart(emoji)).toBe(emoji);
    expect(keyPart(`${emoji}!`)).toContain('~');
  });

  it('never lets a verbatim value equal a hashed one', () => {
    const long = 'y'.repeat(300);
    const hashed = keyPart(long);
    expect(keyPart(hashed)).not.toBe(hashed);
    expect(keyPart('a~b')).toMatch(/^a~b~/);
  });

  it('hashes what a barrier field would refuse instead of storing it', () => {
    for (const value of ['tab\there', 'trailing ', 'nul\u0000']) {
      const key = keyPart(value);
      expect(key).toContain('~');
      expect(() => asBranch(key)).not.toThrow();
    }
  });

  it('joins parts so that no two different lists meet', () => {
    expect(compositeKey(['a/b', 'c'])).not.toBe(compositeKey(['a', 'b/c']));
    expect(compositeKey(['a%2Fb', 'c'])).not.toBe(compositeKey(['a/b', 'c']));
    expect(compositeKey(['a/b', 'c'])).toBe('a%2Fb/c');
  });

  it('refuses empty parts and lone surrogates with a typed error', () => {
    expect(() => keyPart('')).toThrow(BarrierInputError);
    expect(() => keyPart('user-\uD800')).toThrow(BarrierInputError);
    expect(() => compositeKey(['a', ''])).toThrow(BarrierInputError);
    expect(() => compositeKey([])).toThrow(BarrierInputError);
  });
});
