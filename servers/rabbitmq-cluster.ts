/**
 * A three-node RabbitMQ cluster on this machine, for the cluster suite (test/peers/clusters/): the
 * Debian `rabbitmq-server` started three more times beside the shared node, each with its own node
 * name, AMQP and distribution ports (free ones), data and log folders in a temporary folder, an
 * epmd of its own on a free port and a fresh Erlang cookie, so nothing it does reaches the shared
 * node on 5672 (or its epmd on 4369). The nodes start in parallel and form the cluster by
 * themselves (classic-config peer discovery); each Erlang VM runs one scheduler (`+S 1:1`) so three
 * of them fit on two cores. Every process runs under servers/guarded.ts: none outlives the test.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './index.js';
import { type ClusterMember, type GuardedProcess, listening, startGuarded, waitFor } from './guarded.js';

const SBIN = '/usr/lib/rabbitmq/bin';

/** A node: named `txb<n>@localhost` (the Erlang node name), at `amqp://guest:guest@127.0.0.1:<port>`. */
export type RabbitNode = ClusterMember;

export interface RabbitCluster {
  readonly nodes: readonly RabbitNode[];
  /** Every node's URL, in node order. */
  readonly urls: string[];
  /** The node leading a quorum queue now, as a running node reports it (`rabbitmqctl list_queues name leader`). */
  leaderOf(queue: string): Promise<RabbitNode>;
  /** Kills every node and epmd and deletes the data. */
  stop(): Promise<void>;
}

/** A node as started here: launched without waiting for the cluster (the first start launches all three at once). */
interface NodeHandle extends RabbitNode {
  launch(): Promise<void>;
  readonly process: GuardedProcess;
}

/** Starts `size` nodes in parallel and resolves once they form one cluster. Rejects, with the nodes' output, when they cannot. */
export async function startRabbitCluster(options: { size?: number; timeoutMs?: number } = {}): Promise<RabbitCluster> {
  const size = options.size ?? 3;
  const timeoutMs = options.timeoutMs ?? 180_000;
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-rabbitmq-'));
  const home = join(dir, 'home');
  mkdirSync(home);
  // Read by the nodes and the CLI from $HOME: a cookie of this cluster's own.
  writeFileSync(join(home, '.erlang.cookie'), randomBytes(20).toString('hex'));
  chmodSync(join(home, '.erlang.cookie'), 0o400);
  // The Debian rabbitmq-env.conf names the shared node; an empty one of ours replaces it.
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const epmdPort = await freePort();
  const ctlPort = await freePort();
  const common: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CTL_DIST_PORT_MIN: String(ctlPort),
    RABBITMQ_CTL_DIST_PORT_MAX: String(ctlPort + 10),
  };
  const processes = new Set<GuardedProcess>();
  const epmd = await startGuarded('epmd', ['-address', '127.0.0.1', '-port', String(epmdPort)], { env: common });
  processes.add(epmd);

  const names = Array.from({ length: size }, (_, i) => `txb${i + 1}@localhost`);
  const specs = await Promise.all(names.map(async (name) => ({ name, port: await freePort(), distPort: await freePort() })));
  const nodes = specs.map(({ name, port, distPort }) => {
    const nodeDir = join(dir, name.split('@')[0]!);
    mkdirSync(nodeDir);
    const config = join(nodeDir, 'rabbitmq.conf');
    writeFileSync(
      config,
      [
        `listeners.tcp.default = 127.0.0.1:${port}`,
        'loopback_users = none',
        'cluster_formation.peer_discovery_backend = classic_config',
        ...names.map((peer, i) => `cluster_formation.classic_config.nodes.${i + 1} = ${peer}`),
        'disk_free_limit.absolute = 10MB',
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {
      ...common,
      RABBITMQ_NODENAME: name,
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_CONFIG_FILE: config,
      RABBITMQ_MNESIA_BASE: join(nodeDir, 'mnesia'),
      RABBITMQ_PLUGINS_EXPAND_DIR: join(nodeDir, 'plugins'),
      RABBITMQ_PID_FILE: join(nodeDir, 'pid'),
      // The log goes to stdout, which servers/guarded.ts keeps the end of.
      RABBITMQ_LOGS: '-',
      // One scheduler and few async threads per VM; distribution on loopback only.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '+S 1:1 +A 4 -kernel inet_dist_use_interface {127,0,0,1}',
    };
    let current: GuardedProcess | undefined;
    const launch = async () => {
      if (current?.running) return;
      const started = await startGuarded(`${SBIN}/rabbitmq-server`, [], { env, cwd: nodeDir });
      processes.add(started);
      current = started;
      await waitFor(`${name} to accept AMQP connections`, timeoutMs, () => listening(port), started);
    };
    const node: NodeHandle = {
      name,
      port,
      url: `amqp://guest:guest@127.0.0.1:${port}`,
      get running() {
        return current?.running ?? false;
      },
      async kill() {
        await current?.kill();
      },
      async start() {
        await launch();
        await clustered(node);
      },
      launch,
      get process() {
        return current!;
      },
    };
    return node;
  });

  const ctl = (node: string, args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile(`${SBIN}/rabbitmqctl`, ['-q', '-n', node, ...args], { env: common, timeout: 60_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`rabbitmqctl ${args.join(' ')} on ${node}: ${stderr.trim() || error.message}`)) : resolve(stdout),
      ),
    );
  /** Resolves once `node` reports every node of the cluster running (one CLI call at a time: each starts a VM). */
  async function clustered(node: NodeHandle): Promise<void> {
    await waitFor(`${node.name} to run in a cluster of ${size}`, timeoutMs, async () => {
      try {
        const status = JSON.parse(await ctl(node.name, ['cluster_status', '--formatter', 'json'])) as { running_nodes?: string[] };
        return status.running_nodes?.length === size;
      } catch {
        return false;
      }
    }, node.process);
  }

  const stop = async () => {
    await Promise.all([...processes].map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((node) => node.launch()));
    await clustered(nodes[0]!);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    nodes,
    urls: nodes.map((node) => node.url),
    async leaderOf(queue) {
      const asked = nodes.find((node) => node.running);
      if (!asked) throw new Error('no node of the cluster is running');
      const rows = JSON.parse(await ctl(asked.name, ['list_queues', '--formatter', 'json', 'name', 'leader'])) as { name: string; leader: string }[];
      const leader = rows.find((row) => row.name === queue)?.leader;
      const node = nodes.find((n) => n.name === leader);
      if (!node) throw new Error(`no leader reported for queue ${queue} (got ${JSON.stringify(rows.filter((row) => row.name === queue))})`);
      return node;
    },
    stop,
  };
}
