/**
 * The consumer core's shutdown bookkeeping, without a broker or a database: deliveries in flight
 * are counted (not tracked as promises, see per-message-budget.test.ts), so `drain` must still wait
 * for every one of them, for every caller, and give up at its deadline saying how many were left.
 */
import { describe, expect, it } from 'vitest';
import type { BarrierStore } from '../../src/index.js';
import { BarrierShutdownTimeout, messageConsumer } from '../../src/messaging/consumer.js';

/** A delivery the core settles without touching the store (it has no id), held in flight by its settlement. */
function held(shutdownTimeout = 30_000) {
  const core = messageConsumer({ store: {} as BarrierStore<unknown>, consumer: 'drain-test', handle: () => undefined, shutdownTimeout });
  let release!: () => void;
  const settled = core.deliver({ message: {}, id: undefined, source: ['queue'], attempt: 1, header: () => undefined }, () => new Promise<void>((resolve) => (release = resolve)));
  return { core, settled, release: () => release() };
}

describe('drain', () => {
  it('resolves at once with nothing in flight', async () => {
    const { core, settled, release } = held();
    release();
    expect(await settled).toBe('dead-letter');
    await core.drain();
  });

  it('waits for the delivery in flight, for two callers at once', async () => {
    const { core, settled, release } = held();
    let drained = 0;
    const drains = [core.drain(), core.drain()].map((drain) => drain.then(() => drained++));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(drained).toBe(0);
    release();
    await Promise.all(drains);
    expect(drained).toBe(2);
    expect(await settled).toBe('dead-letter');
  });

  it('gives up at its deadline with the count still in flight, and releases what arrives after', async () => {
    const { core, release } = held(30);
    await expect(core.drain()).rejects.toSatisfy((error) => error instanceof BarrierShutdownTimeout && error.inFlight === 1);
    const late = core.deliver({ message: {}, id: 'late', source: ['queue'], attempt: 1, header: () => undefined }, () => undefined);
    expect(await late).toBe('released');
    release();
    await core.drain();
  });
});
