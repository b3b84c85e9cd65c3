/**
 * A three-node MariaDB Galera cluster on loopback, for the multi-primary suite (test/peers/galera/,
 * `npm run test:galera`) and its chaos runs: Debian's `mariadbd` with galera-4, every node on free
 * ports with its data in one fresh temporary folder. Each node runs with `--no-defaults`, so the
 * machine's own MariaDB (port 3306, /etc/mysql) is never read or touched.
 *
 * The first node starts a new cluster (`--wsrep-new-cluster`); the others join it and receive its
 * data by rsync state transfer. Every node runs as the `mysql` user with its folder owned by it: a
 * joiner running as root fails the transfer ("mkdir … Permission denied"). Each `mariadbd` runs
 * under a shell that stops it when our stdin pipe closes, so the cluster goes down with the process
 * that started it even when that process is killed; `stop()` also ends anything else still running
 * from the cluster's folder (a state transfer's rsync) before deleting it.
 *
 * Sized for two shared cores: a 32 MB buffer pool, one I/O thread each way, no performance schema,
 * two applier threads, and short group-membership timeouts so a killed node is evicted in seconds.
 *
 * `npm run galera` starts one and prints its nodes until Ctrl-C; `npm run galera -- --check` starts
 * it, prints how long that took, and stops it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { freePort } from './index.js';

/** The galera-4 provider Debian's `galera-4` package installs. TXBARRIER_GALERA_PROVIDER overrides it. */
export const GALERA_PROVIDER = process.env.TXBARRIER_GALERA_PROVIDER ?? '/usr/lib/galera/libgalera_smm.so';
const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
/** The OS user the nodes run as (the packages' own). */
const SERVER_USER = 'mysql';

const run = promisify(execFile);

/** What every node runs with besides its ports and folders: small, and the settings Galera requires. */
const COMMON_OPTIONS = [
  '--bind-address=127.0.0.1',
  `--user=${SERVER_USER}`,
  '--skip-name-resolve',
  '--performance-schema=OFF',
  '--innodb-buffer-pool-size=32M',
  '--innodb-log-file-size=16M',
  '--innodb-read-io-threads=1',
  '--innodb-write-io-threads=1',
  '--innodb-purge-threads=1',
  // Galera's durability is the other nodes'; this is its documented companion setting.
  '--innodb-flush-log-at-trx-commit=2',
  '--key-buffer-size=1M',
  '--aria-pagecache-buffer-size=1M',
  '--max-connections=200',
  // Required by Galera: row events, interleaved auto-increment locks, a transactional engine.
  '--binlog-format=ROW',
  '--innodb-autoinc-lock-mode=2',
  '--default-storage-engine=InnoDB',
  '--wsrep-on=ON',
  `--wsrep-provider=${GALERA_PROVIDER}`,
  '--wsrep-slave-threads=2',
  '--wsrep-sst-method=rsync',
];

/**
 * A silent node is suspected after 1.5 s and evicted after 3 s (defaults 5 s and 15 s), so a
 * SIGKILLed node stalls the others' commits for seconds, not a quarter of a minute.
 */
const MEMBERSHIP_TIMEOUTS = 'evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;evs.suspect_timeout=PT1.5S;evs.inactive_timeout=PT3S;evs.install_timeout=PT3S';

export interface GaleraNode {
  /** `node1`, `node2`, `node3`. */
  readonly name: string;
  /** The node's client port on 127.0.0.1. */
  readonly port: number;
  /** `mysql://root@127.0.0.1:<port>/<database>` (root has no password on a test cluster). */
  url(database?: string): string;
  /** Whether this node's `mariadbd` is running. */
  readonly running: boolean;
}

export interface GaleraCluster {
  readonly nodes: readonly GaleraNode[];
  /** Where each node's data and log live (one folder per node under it). */
  readonly dir: string;
  /**
   * SIGKILLs a node's `mariadbd` (a crash: no shutdown, no goodbye to the group) and resolves once
   * the other nodes have evicted it and are Synced.
   */
  kill(index: number): Promise<void>;
  /** Starts a killed node again; resolves once it has rejoined (state transfer included) and every node is Synced. */
  restart(index: number): Promise<void>;
  /** Resolves once every running node sees all the running nodes and is Synced; rejects after `timeoutMs` (default 120 s). */
  synced(timeoutMs?: number): Promise<void>;
  /** The last lines of a node's error log, for a failure message. */
  log(index: number): string;
  /** Stops every node, ends anything else still running from the cluster's folder, and deletes it. */
  stop(): Promise<void>;
}

interface Ports {
  client: number;
  group: number;
  ist: number;
  sst: number;
}

/** Starts three nodes (`nodes` to change that) and resolves once all are Synced in one cluster. Rejects, saying why, when it cannot. */
export async function startGalera(options: { nodes?: number; database?: string } = {}): Promise<GaleraCluster> {
  const count = options.nodes ?? 3;
  const database = options.database ?? 'txbarrier_test';
  const dir = mkdtempSync(join(tmpdir(), 'txbarrier-galera-'));
  // mkdtemp makes it root-only; the nodes run as mysql and must reach their folders.
  chmodSync(dir, 0o755);
  const ports: Ports[] = [];
  for (let i = 0; i < count; i++) ports.push({ client: await freePort(), group: await freePort(), ist: await freePort(), sst: await freePort() });
  const tag = dir.slice(-6).replace(/[^A-Za-z0-9]/g, '');
  const address = `gcomm://${ports.map((p) => `127.0.0.1:${p.group}`).join(',')}`;
  const folder = (i: number) => join(dir, `node${i + 1}`);

  const processes: (ChildProcess | undefined)[] = [];
  const exits: Promise<void>[] = [];
  const pids: (number | undefined)[] = [];
  // Nodes that should be running: started, and neither killed nor stopped since.
  const wanted: boolean[] = [];
  const stderrs: string[] = [];

  const serverArgs = (i: number) => {
    const p = ports[i]!;
    return [
      '--no-defaults',
      `--datadir=${folder(i)}`,
      `--socket=${join(dir, `node${i + 1}.sock`)}`,
      `--pid-file=${join(dir, `node${i + 1}.pid`)}`,
      `--log-error=${join(dir, `node${i + 1}.err`)}`,
      `--port=${p.client}`,
      ...COMMON_OPTIONS,
      `--wsrep-cluster-name=txbarrier-${tag}`,
      `--wsrep-cluster-address=${address}`,
      `--wsrep-node-name=node${i + 1}`,
      '--wsrep-node-address=127.0.0.1',
      `--wsrep-node-incoming-address=127.0.0.1:${p.client}`,
      `--wsrep-sst-receive-address=127.0.0.1:${p.sst}`,
      `--wsrep-provider-options=base_port=${p.group};gmcast.listen_addr=tcp://127.0.0.1:${p.group};ist.recv_addr=127.0.0.1:${p.ist};gcache.size=32M;${MEMBERSHIP_TIMEOUTS}`,
    ];
  };

  const launch = async (i: number, newCluster: boolean) => {
    // The shell prints the server's pid, stops it when our stdin closes, and exits when it does. (A
    // background list reads /dev/null unless told otherwise, hence our stdin kept as fd 3.)
    const guard = 'exec 3<&0; "$@" </dev/null 3<&- & pid=$!; echo $pid; (cat <&3 >/dev/null; kill $pid 2>/dev/null) & exec 3<&-; wait $pid';
    const child = spawn('sh', ['-c', guard, 'sh', MARIADBD, ...serverArgs(i), ...(newCluster ? ['--wsrep-new-cluster'] : [])], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    processes[i] = child;
    wanted[i] = true;
    stderrs[i] = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderrs[i] = (stderrs[i] + chunk).slice(-4000)));
    exits[i] = new Promise<void>((resolve) => child.once('exit', () => {
      pids[i] = undefined;
      // The watcher subshell still reads our pipe: closing it lets it end.
      child.stdin.end();
      resolve();
    }));
    pids[i] = await new Promise<number>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (line: string) => resolve(Number.parseInt(line, 10)));
      child.once('exit', () => reject(new Error(`node${i + 1} exited at once:\n${tail(i)}`)));
    });
  };

  /** What the node printed before it opened its log, then its log's last lines. */
  const tail = (i: number) => {
    let log: string;
    try {
      log = readFileSync(join(dir, `node${i + 1}.err`), 'utf8').trim().split('\n').slice(-25).join('\n');
    } catch {
      log = '(no error log)';
    }
    return `${stderrs[i]?.trim() ?? ''}\n${log}`.trim();
  };

  const nodes: GaleraNode[] = ports.map((p, i) => ({
    name: `node${i + 1}`,
    port: p.client,
    url: (db = database) => `mysql://root@127.0.0.1:${p.client}/${db}`,
    get running() {
      return pids[i] !== undefined;
    },
  }));

  const synced = async (timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = nodes.map((_, i) => i).filter((i) => wanted[i]);
      const gone = running.find((i) => pids[i] === undefined);
      if (gone !== undefined) throw new Error(`node${gone + 1} exited:\n${tail(gone)}`);
      const states = await Promise.all(running.map((i) => nodeState(ports[i]!.client)));
      if (states.every((s) => s?.synced && s.size === running.length)) return;
      if (Date.now() > deadline) {
        const seen = running.map((i, k) => `node${i + 1}: ${JSON.stringify(states[k] ?? 'unreachable')}`).join('; ');
        throw new Error(`the Galera cluster did not settle within ${timeoutMs} ms (${seen})\n${running.map((i) => `--- node${i + 1}\n${tail(i)}`).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };

  const stop = async () => {
    wanted.fill(false);
    await Promise.all(
      processes.map(async (child, i) => {
        if (!child || pids[i] === undefined) return;
        child.stdin!.end();
        const timer = setTimeout(() => pids[i] !== undefined && process.kill(pids[i]!, 'SIGKILL'), 30_000);
        await exits[i];
        clearTimeout(timer);
      }),
    );
    endLeftovers(dir);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    // One data folder made once and copied: the joiners' copies are replaced by the state transfer.
    const template = join(dir, 'template');
    await run(INSTALL_DB, [
      '--no-defaults',
      `--datadir=${template}`,
      `--user=${SERVER_USER}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--innodb-log-file-size=16M',
      '--innodb-buffer-pool-size=32M',
    ]);
    for (let i = 0; i < count; i++) await run('cp', ['-a', template, folder(i)]);
    rmSync(template, { recursive: true, force: true });
    await run('chown', ['-R', `${SERVER_USER}:`, dir]);

    await launch(0, true);
    await synced();
    for (let i = 1; i < count; i++) await launch(i, false);
    await synced();
    const admin = await mysql.createConnection({ host: '127.0.0.1', port: ports[0]!.client, user: 'root' });
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` DEFAULT CHARACTER SET utf8mb4`);
    await admin.end();
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    nodes,
    dir,
    async kill(index) {
      const pid = pids[index];
      if (pid === undefined) throw new Error(`node${index + 1} is not running`);
      wanted[index] = false;
      process.kill(pid, 'SIGKILL');
      await exits[index];
      await synced();
    },
    async restart(index) {
      if (pids[index] !== undefined) throw new Error(`node${index + 1} is running`);
      await launch(index, false);
      await synced();
    },
    synced,
    log: tail,
    stop,
  };
}

interface NodeState {
  size: number;
  synced: boolean;
}

/** A node's view of the cluster, or undefined while it does not answer. */
async function nodeState(port: number): Promise<NodeState | undefined> {
  let connection: mysql.Connection | undefined;
  try {
    connection = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 2000 });
    const [rows] = await connection.query(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment', 'wsrep_ready', 'wsrep_cluster_status')",
    );
    const status = Object.fromEntries((rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name, r.Value]));
    return {
      size: Number(status.wsrep_cluster_size ?? 0),
      synced: status.wsrep_local_state_comment === 'Synced' && status.wsrep_ready === 'ON' && status.wsrep_cluster_status === 'Primary',
    };
  } catch {
    return undefined;
  } finally {
    await connection?.end().catch(() => connection?.destroy());
  }
}

/**
 * SIGKILLs, by pid, every process still running with the cluster's folder on its command line (an
 * rsync a state transfer left behind): `dir` is a fresh temporary folder, so nothing else names it.
 */
function endLeftovers(dir: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let commandLine: string;
    try {
      commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (commandLine.includes(dir)) {
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch {
        // It ended meanwhile.
      }
    }
  }
}

// `npm run galera`: a cluster for trying things by hand; `-- --check` starts one, reports, and stops it (CI's smoke).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = Date.now();
  const cluster = await startGalera();
  console.log(`Galera: ${cluster.nodes.length} nodes Synced in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const node of cluster.nodes) console.log(`  ${node.name}: ${node.url()}`);
  if (process.argv.includes('--check')) {
    await cluster.stop();
  } else {
    console.log('Ctrl-C stops it and deletes its data.');
    const stop = () => void cluster.stop().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
}
