/**
 * What the Galera suite's files share: a three-node cluster of their own (servers/galera.ts), a
 * mysql2 pool per node, and the suite's size. `npm run test:galera:long` sets TXBARRIER_GALERA_LONG=1.
 */
import mysql from 'mysql2/promise';
import { type GaleraCluster, startGalera } from '../../../servers/galera.js';

/** The long form: more sagas, messages and rounds than CI's short one. */
export const LONG = process.env.TXBARRIER_GALERA_LONG === '1';

export interface GaleraHarness {
  cluster: GaleraCluster;
  /** One pool per node, in node order. */
  pools: mysql.Pool[];
  /**
   * A pool on one node whose sessions first wait until the node has applied everything the cluster
   * committed before they began (`wsrep_sync_wait = 1`: reads and START TRANSACTION): a retry there
   * reads the winner's row instead of racing it once more.
   */
  causalPool(index: number): mysql.Pool;
  close(): Promise<void>;
}

export async function openCluster(): Promise<GaleraHarness> {
  const cluster = await startGalera();
  const pools: mysql.Pool[] = [];
  const pool = (index: number, causal: boolean) => {
    const created = mysql.createPool({ uri: cluster.nodes[index]!.url(), connectionLimit: 6 });
    // Queued before anything the pool's user sends on a new connection.
    if (causal) created.pool.on('connection', (connection) => void connection.query('SET SESSION wsrep_sync_wait = 1'));
    pools.push(created);
    return created;
  };
  const perNode = cluster.nodes.map((_, index) => pool(index, false));
  const causal = new Map<number, mysql.Pool>();
  return {
    cluster,
    pools: perNode,
    causalPool: (index) => causal.get(index) ?? causal.set(index, pool(index, true)).get(index)!,
    async close() {
      await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
      await cluster.stop();
    },
  };
}

/** True when `error` or its cause is MySQL's deadlock error, which a Galera certification failure also answers. */
export function isDeadlock(error: unknown): boolean {
  for (let e = error as { errno?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) if (e.errno === 1213) return true;
  return false;
}
