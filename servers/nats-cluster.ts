/**
 * A three-server NATS cluster with JetStream on this machine, for the cluster suite
 * (test/peers/clusters/): the Debian `nats-server` started three more times beside the shared one,
 * on free loopback ports (client, route, monitoring), with routes to each other, JetStream on and a
 * store folder each in a temporary folder. Every process runs under servers/guarded.ts: none
 * outlives the test.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './index.js';
import { type ClusterMember, type GuardedProcess, startGuarded, waitFor } from './guarded.js';

/** A server: named `n<n>` (its `server_name`), at `nats://127.0.0.1:<port>`. */
export type NatsServer = ClusterMember;

export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Every server's URL, in server order. */
  readonly urls: string[];
  /** The server named `name` (a stream's `cluster.leader`). */
  server(name: string): NatsServer;
  /** Kills every server and deletes the stores. */
  stop(): Promise<void>;
}

/** Starts `size` servers in parallel and resolves once JetStream is healthy on each. Rejects, with the servers' output, when it is not. */
export async function startNatsCluster(options: { size?: number; timeoutMs?: number } = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-nats-'));
  const specs = await Promise.all(
    Array.from({ length: size }, async (_, i) => ({ name: `n${i + 1}`, port: await freePort(), routePort: await freePort(), httpPort: await freePort() })),
  );
  const processes = new Set<GuardedProcess>();
  const servers = specs.map(({ name, port, routePort, httpPort }) => {
    const store = join(dir, name);
    mkdirSync(store);
    const config = join(dir, `${name}.conf`);
    const routes = specs.filter((peer) => peer.name !== name).map((peer) => `"nats://127.0.0.1:${peer.routePort}"`);
    writeFileSync(
      config,
      [
        `server_name: ${name}`,
        `listen: "127.0.0.1:${port}"`,
        `http: "127.0.0.1:${httpPort}"`,
        `jetstream { store_dir: "${store}", max_memory_store: 64MB, max_file_store: 1GB }`,
        `cluster { name: txbarrier, listen: "127.0.0.1:${routePort}", routes: [${routes.join(', ')}] }`,
        '',
      ].join('\n'),
    );
    let current: GuardedProcess | undefined;
    const server: NatsServer = {
      name,
      port,
      url: `nats://127.0.0.1:${port}`,
      get running() {
        return current?.running ?? false;
      },
      async kill() {
        await current?.kill();
      },
      async start() {
        if (current?.running) return;
        const started = await startGuarded('nats-server', ['-c', config]);
        processes.add(started);
        current = started;
        // 200 once the server has JetStream's meta leader and its streams and consumers are current.
        await waitFor(`${name}'s JetStream to be healthy`, timeoutMs, () => healthy(httpPort), started);
      },
    };
    return server;
  });

  const stop = async () => {
    await Promise.all([...processes].map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(servers.map((server) => server.start()));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    servers,
    urls: servers.map((server) => server.url),
    server(name) {
      const found = servers.find((server) => server.name === name);
      if (!found) throw new Error(`no server named ${name} in the cluster (${servers.map((s) => s.name).join(', ')})`);
      return found;
    },
    stop,
  };
}

async function healthy(httpPort: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok;
  } catch {
    return false;
  }
}
