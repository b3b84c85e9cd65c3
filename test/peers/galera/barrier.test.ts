/**
 * The barrier on three primaries (a Galera cluster of the file's own). Two nodes' transactions that
 * insert one barrier key both see their row go in (row locks are node-local); one commits, the
 * other's COMMIT fails certification with 1213. Through `call` that is `BarrierOngoing`, through an
 * executor the caller's commit rejects with an error the protocol answers ONGOING; the business
 * work applied once either way, and the retry reads `duplicate`/`dangling`. Then a coordinator
 * with faults plays sagas round-robin over the three nodes through mysql2's PoolCluster while one
 * node is SIGKILLed and rejoins.
 */
import { randomUUID } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knexExecutor } from '../../../adapters/orm/knex.js';
import { mysqlStore } from '../../../adapters/stores/mysql.js';
import { Barrier, BarrierOngoing, type BarrierResult, type BarrierStore, mysqlDialect, type OutcomeEvent, verdictOfError } from '../../../src/index.js';
import { checkLedger, type Delivery, formatViolations, type LedgerEntry, runChaos } from '../../../src/testing/index.js';
import { deferred, holdOpen, waitUntil } from '../../support/server-harness.js';
import { type GaleraHarness, isDeadlock, LONG, openCluster } from './harness.js';

const TABLE = 'galera_barrier';
const NOTES = 'galera_notes';
const LEDGER = 'galera_ledger';

let h: GaleraHarness;

beforeAll(async () => {
  h = await openCluster();
  // DDL runs on every node at once (Galera's total order isolation).
  await mysqlStore(h.pools[0]!, { table: TABLE }).ensureSchema();
  await h.pools[0]!.query(`CREATE TABLE ${NOTES} (seq BIGINT AUTO_INCREMENT PRIMARY KEY, gid VARCHAR(200) NOT NULL, note VARCHAR(64) NOT NULL, KEY (gid))`);
  // Auto-increment values interleave across nodes (each node its own offset), so they do not order
  // commits: the ledger orders by the server's clock in microseconds (one machine, one clock). Two
  // effects of one branch conflict on its barrier key, so the later one began after the earlier committed.
  await h.pools[0]!.query(
    `CREATE TABLE ${LEDGER} (id BIGINT AUTO_INCREMENT PRIMARY KEY, at BIGINT NOT NULL, node VARCHAR(64) NOT NULL, gid VARCHAR(200) NOT NULL, branch_id VARCHAR(20) NOT NULL, op VARCHAR(20) NOT NULL, KEY (gid))`,
  );
});

afterAll(() => h?.close());

type Tx = mysql.PoolConnection;
const store = (index: number) => mysqlStore(h.pools[index]!, { table: TABLE });
const saga = (gid: string, op: 'action' | 'compensate') => Barrier.from({ transType: 'saga', gid, branchId: '01', op });
const record = (gid: string, note: string) => async (tx: Tx) => {
  await tx.query(`INSERT INTO ${NOTES} (gid, note) VALUES (?, ?)`, [gid, note]);
  return note;
};
/** The committed notes of a gid, read on a node that first catches up with the cluster. */
async function notes(gid: string): Promise<string[]> {
  const [rows] = await h.causalPool(2).query(`SELECT note FROM ${NOTES} WHERE gid = ? ORDER BY seq`, [gid]);
  return (rows as { note: string }[]).map((r) => r.note);
}
const settled = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error }));

describe('the barrier on three primaries: races sent to different nodes', () => {
  const rounds = LONG ? 20 : 4;

  it(`two deliveries of one action on two nodes, both past their insert before either commits: one applies, the other is BarrierOngoing (1213 at COMMIT), the retry on a third node reads duplicate (${rounds} rounds)`, async () => {
    for (let round = 0; round < rounds; round++) {
      const gid = randomUUID();
      const held = [holdOpen(store(0)), holdOpen(store(1))];
      const calls = held.map((hold) => settled(saga(gid, 'action').call(hold.store, record(gid, 'action'))));
      // Both transactions inserted the barrier row on their own node: neither waited for the other.
      await Promise.all(held.map((hold) => hold.entered));
      for (const hold of held) hold.commit();
      const results = await Promise.all(calls);
      const applied = results.filter((r) => 'value' in r);
      const refused = results.filter((r) => 'error' in r).map((r) => (r as { error: unknown }).error);
      expect(applied).toEqual([{ value: { outcome: 'applied', value: 'action' } }]);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toBeInstanceOf(BarrierOngoing);
      expect(isDeadlock(refused[0])).toBe(true);
      // The coordinator's retry, on the third node.
      expect(await saga(gid, 'action').call(mysqlStore(h.causalPool(2), { table: TABLE }), record(gid, 'action'))).toEqual({ outcome: 'duplicate' });
      expect(await notes(gid)).toEqual(['action']);
    }
  });

  it('an action and its compensation on two nodes at once: whichever commits, the other is BarrierOngoing, and its retry is decided as on one server', async () => {
    const seen = new Set<string>();
    for (let round = 0; round < rounds; round++) {
      const gid = randomUUID();
      const action = holdOpen(store(0));
      const compensation = holdOpen(store(1));
      const calls = {
        action: settled(saga(gid, 'action').call(action.store, record(gid, 'action'))),
        compensate: settled(saga(gid, 'compensate').call(compensation.store, record(gid, 'compensate'))),
      };
      await Promise.all([action.entered, compensation.entered]);
      action.commit();
      compensation.commit();
      const [a, c] = await Promise.all([calls.action, calls.compensate]);
      const retryStore = mysqlStore(h.causalPool(2), { table: TABLE });
      if ('value' in a) {
        // The action committed first: the compensation lost, and its retry compensates it.
        expect(a.value).toEqual({ outcome: 'applied', value: 'action' });
        expect('error' in c && c.error instanceof BarrierOngoing && isDeadlock(c.error)).toBe(true);
        expect(await saga(gid, 'compensate').call(retryStore, record(gid, 'compensate'))).toEqual({ outcome: 'applied', value: 'compensate' });
        expect(await notes(gid)).toEqual(['action', 'compensate']);
        seen.add('action first');
      } else {
        // The null compensation committed first: the action lost, and its retry is dangling.
        expect('value' in c && c.value).toEqual({ outcome: 'null-compensation' });
        expect(a.error instanceof BarrierOngoing && isDeadlock(a.error)).toBe(true);
        expect(await saga(gid, 'action').call(retryStore, record(gid, 'action'))).toEqual({ outcome: 'dangling' });
        expect(await notes(gid)).toEqual([]);
        seen.add('compensation first');
      }
    }
    expect(seen.size).toBeGreaterThanOrEqual(1);
  });

  it('through an executor (knex, the caller commits): the losing commit rejects with 1213, which the protocol answers ONGOING and the hooks report as not committed; the retry reads duplicate', async () => {
    const knexes: Knex[] = h.cluster.nodes.map((node) => knexFactory({ client: 'mysql2', connection: node.url(), pool: { min: 0, max: 2 } }));
    try {
      for (let round = 0; round < rounds; round++) {
        const gid = randomUUID();
        const both = deferred();
        let inside = 0;
        const events: OutcomeEvent[] = [];
        const deliver = (knex: Knex) =>
          settled(
            knex.transaction((trx) =>
              saga(gid, 'action').within(knexExecutor(trx, { table: TABLE, onOutcome: (event) => events.push(event) }), async () => {
                await trx.raw(`INSERT INTO ${NOTES} (gid, note) VALUES (?, 'action')`, [gid]);
                if (++inside === 2) both.resolve();
                await both.promise;
                return 'action';
              }),
            ),
          );
        const results = await Promise.all([deliver(knexes[0]!), deliver(knexes[1]!)]);
        const applied = results.filter((r) => 'value' in r);
        const refused = results.filter((r) => 'error' in r).map((r) => (r as { error: unknown }).error);
        expect(applied).toEqual([{ value: { outcome: 'applied', value: 'action' } }]);
        expect(refused).toHaveLength(1);
        expect(isDeadlock(refused[0])).toBe(true);
        expect(verdictOfError(refused[0], { dialect: mysqlDialect }).result).toBe('ONGOING');
        // Each is reported once its transaction has ended, which may be a moment after knex settled.
        await waitUntil('both outcomes are reported', async () => events.length === 2);
        expect(events.map((e) => [e.outcome, e.committed]).sort()).toEqual([
          ['applied', false],
          ['applied', true],
        ]);
        const retry = await knexes[2]!.transaction(async (trx) => {
          // The retry's node catches up with the cluster before the barrier reads (see causalPool).
          await trx.raw('SET SESSION wsrep_sync_wait = 1');
          await trx.raw('SELECT 1');
          return saga(gid, 'action').within(knexExecutor(trx, { table: TABLE }), () => 'action');
        });
        expect(retry).toEqual({ outcome: 'duplicate' });
        expect(await notes(gid)).toEqual(['action']);
      }
    } finally {
      await Promise.all(knexes.map((k) => k.destroy()));
    }
  });
});

describe('MySQL Group Replication, by reasoning', () => {
  it("its certification failure at COMMIT (3101) is retryable like Galera's 1213: BarrierOngoing from call, ONGOING from the protocol", () => {
    const rollback = Object.assign(new Error('Plugin instructed the server to rollback the current transaction.'), { errno: 3101 });
    expect(mysqlDialect.isRetryable(rollback)).toBe(true);
    expect(verdictOfError(rollback, { dialect: mysqlDialect }).result).toBe('ONGOING');
  });
});

describe('the barrier on three primaries: a node SIGKILLed and rejoined mid-run', () => {
  const sagas = LONG ? 2000 : 200;

  it(`a coordinator with faults plays ${sagas} two-branch sagas round-robin over the nodes (mysql2 PoolCluster) while node3 is killed, then ${sagas} more once it rejoined: every branch applied at most once and compensated only if applied`, async () => {
    // canRetry: a connection refused by a dead node is asked of the next node. removeNodeErrorCount
    // 1 and restoreNodeTimeout: the dead node leaves the rotation at its first refusal and is tried
    // again a second later, so it is used again once it has rejoined.
    const poolCluster = mysql.createPoolCluster({ canRetry: true, removeNodeErrorCount: 1, restoreNodeTimeout: 1000, defaultSelector: 'RR' });
    for (const node of h.cluster.nodes) poolCluster.add(node.name, { uri: node.url(), connectionLimit: 4 });
    // A pooled connection to the node that died fails on its next statement; the pool drops it.
    poolCluster.on('warn', () => undefined);
    const clusterStore: BarrierStore<Tx> = mysqlStore(poolCluster.of('*'), { table: TABLE });
    let deliveries = 0;
    let conflicts = 0;
    const handler = async (delivery: Delivery): Promise<BarrierResult<void>> => {
      deliveries++;
      try {
        return await Barrier.from(delivery).call(clusterStore, async (tx) => {
          await tx.query(
            `INSERT INTO ${LEDGER} (at, node, gid, branch_id, op) VALUES (CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS UNSIGNED), @@wsrep_node_name, ?, ?, ?)`,
            [delivery.gid, delivery.branchId, delivery.op],
          );
        });
      } catch (error) {
        if (error instanceof BarrierOngoing && isDeadlock(error)) conflicts++;
        throw error;
      }
    };
    const play = (seed: number) =>
      runChaos({
        seed,
        sagas,
        concurrency: 8,
        faults: { duplicate: 0.4, concurrent: 0.15, 'compensate-first': 0.05, 'late-action': 0.05 },
        branches: [
          { action: handler, compensate: handler },
          { action: handler, compensate: handler },
        ],
        check: async (results) => {
          const [rows] = await h.causalPool(0).query(`SELECT gid, branch_id AS branchId, op, at AS seq FROM ${LEDGER} WHERE gid LIKE ?`, [`chaos-${seed}-%`]);
          return checkLedger(results, (rows as LedgerEntry[]).map((r) => ({ ...r, seq: Number(r.seq) })));
        },
      });
    try {
      // Node3 dies early in the first run; the run goes on over the
      // other two, and node3 rejoins (a state transfer) while or after it ends.
      const fault = (async () => {
        while (deliveries < sagas / 5) await new Promise((resolve) => setTimeout(resolve, 20));
        await h.cluster.kill(2);
        await h.cluster.restart(2);
      })();
      // Awaited below; a failure must not surface earlier as an unhandled rejection.
      fault.catch(() => undefined);
      const duringKill = await play(30);
      await fault;
      expect(duringKill.violations, formatViolations(duringKill)).toEqual([]);
      const rejoined = Date.now();
      const afterRejoin = await play(31);
      expect(afterRejoin.violations, formatViolations(afterRejoin)).toEqual([]);
      // The rejoined node is back in the rotation and took its share of the second run.
      const [served] = await h.causalPool(0).query(`SELECT COUNT(*) AS n FROM ${LEDGER} WHERE node = 'node3' AND at > ?`, [rejoined * 1000]);
      expect(Number((served as { n: number }[])[0]!.n)).toBeGreaterThan(0);
      // The races happened: some deliveries lost a certification conflict and were retried.
      expect(conflicts, JSON.stringify({ duringKill: duringKill.replies, afterRejoin: afterRejoin.replies })).toBeGreaterThan(0);
    } finally {
      await poolCluster.end();
    }
  });
});
