import { describe, expect, it } from 'vitest';
import { messageBarrier } from '../../src/messaging/consumer.js';
import { Barrier, BarrierInputError, compositeKey, keyPart } from '../../src/index.js';

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

describe("a consumed message's key", () => {
  it('names the consumer and the source in the branch id, and hashes a long message id into the gid', () => {
    expect(messageBarrier('ledger-service', ['payments'], 'pay-1')).toMatchObject({ transType: 'saga', gid: 'pay-1', branchId: 'ledger-service/payments', op: 'action' });
    // A JetStream source is two parts; a slash inside a part cannot fake a third.
    expect(messageBarrier('ledger', ['ORDERS', 'orders.created'], 'o-1').branchId).toBe('ledger/ORDERS/orders.created');
    expect(messageBarrier('ledger', ['a/b'], 'o-1').branchId).not.toBe(messageBarrier('ledger', ['a', 'b'], 'o-1').branchId);
    const long = `order-${'9'.repeat(200)}`;
    const { gid } = messageBarrier('ledger', ['payments'], long);
    expect(gid).toBe(keyPart(long));
    expect(gid).toMatch(/^order-9+~[A-Za-z0-9_-]{43}$/);
    expect(messageBarrier('x'.repeat(120), ['y'.repeat(120)], 'm').branchId).toMatch(/~[A-Za-z0-9_-]{43}$/);
  });
});
