/**
 * The transaction bound of a store (src/transaction/deadlines.ts): one timer for all its open
 * transactions, each still ended on time with `BarrierTimeout`, a late failure reported as a warning.
 * The server tests (races.ts) check the rest of the timeout: the connection destroyed, the row released.
 */
import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { BarrierTimeout } from '../../src/index.js';
import { Deadlines } from '../../src/transaction/deadlines.js';

const pending = () => {
  let settle!: { resolve: (value: string) => void; reject: (error: unknown) => void };
  const promise = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  return { promise, ...settle };
};

describe('Deadlines', () => {
  it('passes the work’s value and error through', async () => {
    const deadlines = new Deadlines(1000);
    await expect(deadlines.bound(Promise.resolve('done'))).resolves.toBe('done');
    await expect(deadlines.bound(Promise.reject(new Error('business')))).rejects.toThrow('business');
  });

  it('bounds many open transactions with one timer, and ends each on time', async () => {
    const deadlines = new Deadlines(80);
    let timers = 0;
    const hook = createHook({ init: (_id, type) => void (type === 'Timeout' && timers++) });
    hook.enable();
    const started = performance.now();
    const works = Array.from({ length: 50 }, () => pending());
    const bounded = works.map((work) => deadlines.bound(work.promise).catch((error: unknown) => error));
    // Half finish in time: they must not leave the queue holding them, nor time out later.
    for (const work of works.slice(0, 25)) work.resolve('in time');
    const results = await Promise.all(bounded);
    hook.disable();
    expect(results.slice(0, 25)).toEqual(Array(25).fill('in time'));
    for (const error of results.slice(25)) expect(error).toBeInstanceOf(BarrierTimeout);
    expect(performance.now() - started).toBeGreaterThanOrEqual(79);
    // One timer for the fifty; a loaded machine may spread their deadlines over a few milliseconds, and the sweep
    // then re-arms once or twice for the ones not yet due. A timer each would be 50.
    expect(timers).toBeLessThanOrEqual(3);
  });

  it('re-arms for a later transaction after an earlier one finished, and reports work failing after its timeout', async () => {
    const deadlines = new Deadlines(60);
    const first = pending();
    const firstBound = deadlines.bound(first.promise);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const second = pending();
    const secondStarted = performance.now();
    const secondBound = deadlines.bound(second.promise).catch((error: unknown) => error);
    first.resolve('first');
    expect(await firstBound).toBe('first');
    expect(await secondBound).toBeInstanceOf(BarrierTimeout);
    expect(performance.now() - secondStarted).toBeGreaterThanOrEqual(59);
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    second.reject(new Error('the late business failure'));
    const warning = await warned;
    expect(warning.name).toBe('TxbarrierLateError');
    expect(warning.message).toContain('the late business failure');
  });
});
