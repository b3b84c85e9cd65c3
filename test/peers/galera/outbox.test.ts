/**
 * The outbox on three primaries (a Galera cluster of the file's own). `SELECT … FOR UPDATE SKIP
 * LOCKED` sees only the node's own locks, so two relays on two nodes select the same messages; what
 * keeps them from both publishing is that a claim commits its lease (a write) before anything is
 * published, and of two claims writing one row only one passes certification. Proven on the
 * relay's own statements, then with relays on two nodes and producers on all three (every message
 * once, per-key order, prune), then by the outbox chaos run with its relays on two nodes and one of
 * those nodes SIGKILLed and rejoined mid-run, against RabbitMQ.
 */
import { randomUUID } from 'node:crypto';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOutboxChaos } from '../../../chaos/outbox-run.js';
import { mysqlStore } from '../../../adapters/stores/mysql.js';
import { createOutbox, createRelay, type Outbox, type OutboxDelivery } from '../../../src/messaging/outbox/index.js';
import { AMQP_URL } from '../../../servers/index.js';
import { waitUntil } from '../../support/server-harness.js';
import { type GaleraHarness, isDeadlock, LONG, openCluster } from './harness.js';

let h: GaleraHarness;
beforeAll(async () => {
  h = await openCluster();
});
afterAll(() => h?.close());

const suffix = () => randomUUID().replaceAll('-', '').slice(0, 10);

/** An outbox on a table of its own, reachable through each node. */
async function outboxes(pools: mysql.Pool[]): Promise<Outbox<unknown>[]> {
  const table = `outbox_${suffix()}`;
  const made = pools.map((pool) => createOutbox(mysqlStore(pool), { table }) as Outbox<unknown>);
  await made[0]!.ensureSchema();
  return made;
}

const enqueue = (outbox: Outbox<unknown>, key: string | undefined, n: number) =>
  outbox.store.transaction(({ tx }) => outbox.enqueue(tx, { topic: 'orders', ...(key ? { key } : {}), payload: { n } }));

describe('the outbox on three primaries', () => {
  it("two claims of the same messages on two nodes at once: both select them (SKIP LOCKED sees only the node's locks), both write the lease, only one COMMIT passes certification", async () => {
    const [first] = await outboxes(h.pools);
    for (let n = 0; n < 5; n++) await enqueue(first!, undefined, n);
    const connections = await Promise.all([h.causalPool(0).getConnection(), h.causalPool(1).getConnection()]);
    try {
      const selected: unknown[][] = [];
      for (const connection of connections) {
        await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        await connection.query('START TRANSACTION');
        const [rows] = await connection.query(first!.sql.claim(10));
        selected.push((rows as { seq: unknown }[]).map((row) => row.seq));
      }
      // The node-local locks excluded nothing: a relay that published now, before committing its claim, would publish twice.
      expect(selected[0]).toHaveLength(5);
      expect(selected[1]).toEqual(selected[0]);
      for (const connection of connections) await connection.query(first!.sql.lease(5), [30_000, ...selected[0]!]);
      const commits = await Promise.allSettled(connections.map((connection) => connection.query('COMMIT')));
      expect(commits.filter((c) => c.status === 'fulfilled')).toHaveLength(1);
      const failed = commits.find((c) => c.status === 'rejected') as PromiseRejectedResult;
      expect(isDeadlock(failed.reason)).toBe(true);
      // The winner's lease hides them everywhere: a third node's relay finds nothing to claim.
      const [after] = await h.causalPool(2).query(first!.sql.claim(10));
      expect(after).toEqual([]);
    } finally {
      for (const connection of connections) connection.destroy();
    }
  });

  const keys = LONG ? 30 : 12;
  const perKey = LONG ? 40 : 10;

  it(`relays on two nodes, producers on all three (${keys} keys × ${perKey} messages, each key's next message enqueued on the next node): every message published once, each key in enqueue order, sent rows pruned, no failed round`, async () => {
    // The producers' sessions wait for their node to catch up (wsrep_sync_wait = 1), so a message
    // enqueued after another committed on another node takes a higher seq (docs/multi-primary.md).
    const producers = await outboxes([h.causalPool(0), h.causalPool(1), h.causalPool(2)]);
    const relayOutboxes = producers.map((producer, i) => createOutbox(mysqlStore(h.pools[i]!), { table: producer.table }));
    const published: { relay: number; message: OutboxDelivery }[] = [];
    const errors: unknown[] = [];
    const relays = [0, 1].map((i) =>
      createRelay(relayOutboxes[i]!, {
        store: mysqlStore(h.pools[i]!, { isolationLevel: 'read committed' }),
        publisher: {
          publish: async (message) => {
            published.push({ relay: i, message });
            await new Promise((resolve) => setTimeout(resolve, 1));
          },
        },
        batchSize: 8,
        pollInterval: 10,
        // Sent rows go at once, so both relays prune (the same rows, at times) while messages of the same keys are pending.
        retainSent: 1,
        pruneInterval: 20,
        onError: (error) => errors.push(error),
      }),
    );
    for (const relay of relays) relay.start();
    const enqueued = new Map<string, string[]>();
    try {
      await Promise.all(
        Array.from({ length: keys }, async (_, k) => {
          const key = `key-${k}`;
          enqueued.set(key, []);
          for (let n = 0; n < perKey; n++) enqueued.get(key)!.push(await enqueue(producers[(k + n) % 3]!, key, n));
        }),
      );
      await waitUntil('every message is published', async () => new Set(published.map((p) => p.message.id)).size === keys * perKey, {
        timeoutMs: 120_000,
        intervalMs: 50,
      });
    } finally {
      await Promise.all(relays.map((relay) => relay.stop()));
    }
    expect(errors).toEqual([]);
    expect(published).toHaveLength(keys * perKey);
    for (const [key, ids] of enqueued) expect(published.filter((p) => p.message.key === key).map((p) => p.message.id)).toEqual(ids);
    // Both relays took part; the claims and prunes they lost to each other were not errors.
    expect(new Set(published.map((p) => p.relay)).size).toBe(2);
    const counts = await producers[2]!.counts();
    expect(counts.pending + counts.parked).toBe(0);
    expect(counts.sent).toBeLessThan(keys * perKey);
  });

  const transactions = LONG ? 300 : 40;

  it(`the outbox chaos run (${transactions} transactions, RabbitMQ) with its relays on node2 and node3 and node3 SIGKILLed and rejoined mid-run: every committed message applied once, nothing rolled back applied`, async () => {
    const [node1, node2, node3] = h.cluster.nodes;
    const report = await runOutboxChaos({
      engine: 'mysql',
      broker: 'amqp',
      amqpUrl: AMQP_URL,
      transactions,
      databaseUrl: node1!.url(),
      relayDatabaseUrls: [node2!.url(), node3!.url()],
      midRun: async () => {
        await h.cluster.kill(2);
        await h.cluster.restart(2);
      },
      settleTimeoutMs: 120_000,
      ...(LONG ? {} : { kills: { relays: [[4], [4]], consumer: [5] } }),
    });
    expect(report.violations).toEqual([]);
    expect(report.applied + report.parked + report.deadLettered).toBe(report.committed);
    expect(report.relayKills, JSON.stringify(report)).toBeGreaterThanOrEqual(1);
    expect(h.cluster.nodes.every((node) => node.running)).toBe(true);
  });
});
