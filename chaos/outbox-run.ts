/**
 * One outbox chaos run: a producer writes orders and enqueues their messages in one transaction
 * (some roll back), two relay processes race to publish them, a consumer process applies each
 * with the barrier. Faults: a relay SIGKILLed between the broker's confirm and recording it sent,
 * the consumer SIGKILLed between its commit and its ack, every broker connection dropped at once,
 * poison messages (one the broker refuses, one the consumer dead-letters). The check at the end:
 * every committed order's message applied exactly once, or parked or dead-lettered and reported;
 * nothing from a rolled-back transaction applied.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { AckPolicy, connect as natsConnect } from 'nats';
import { createOutbox } from '../src/messaging/outbox/index.js';
import { type ChaosBroker, type ChaosEngine, type ChaosSettings, kafkaThroughProxy, openStore, placeholders, SETTINGS_VARIABLE } from './outbox-env.js';
import { startProxy } from './outbox-proxy.js';
import { AMQP_URL, NATS_URL } from '../servers/index.js';

export interface OutboxChaosOptions {
  engine: ChaosEngine;
  broker: ChaosBroker;
  /** Producer transactions; about one in six rolls back. */
  transactions: number;
  /** Database URL for the servers (ignored for SQLite). */
  databaseUrl?: string;
  /** Defaults to servers/index.ts's. */
  amqpUrl?: string;
  /** Defaults to servers/index.ts's. */
  natsUrl?: string;
  /** Kafka: `host:port` of the broker (servers/kafka.ts starts one). */
  kafkaBroker?: string;
  /** How long to wait for every committed message to settle. Defaults to 60 s. */
  settleTimeoutMs?: number;
  /**
   * After how many publishes each incarnation of each of the two relays kills itself, and after how
   * many commits each incarnation of the consumer does (later incarnations live). Defaults to two
   * kills of the first relay, one of the second, two of the consumer, spread over the run.
   */
  kills?: { relays: [number[], number[]]; consumer: number[] };
  /** Run the consumer without the barrier, to show that the check catches double applies. Defaults to `false`. */
  consumerWithoutBarrier?: boolean;
  /**
   * The database each of the two relays connects to, for nodes of a multi-primary cluster (the
   * producer and the consumer use `databaseUrl`). Defaults to `databaseUrl` for both.
   */
  relayDatabaseUrls?: [string, string];
  /**
   * A fault started when half the transactions are produced (a database node SIGKILLed and
   * restarted); the producer goes on meanwhile, and the verdict waits for it. Defaults to none.
   */
  midRun?: () => Promise<void>;
}

export interface OutboxChaosReport {
  engine: ChaosEngine;
  broker: ChaosBroker;
  committed: number;
  rolledBack: number;
  applied: number;
  /** Deliveries the consumer's barrier recognised as already applied. */
  duplicatesAbsorbed: number;
  parked: number;
  deadLettered: number;
  relayKills: number;
  consumerKills: number;
  connectionDrops: number;
  /** Children that died of a broker connection the run cut while they were connecting, and were restarted. */
  connectionLostExits: number;
  durationMs: number;
  /** Where the time went: children starting, the producer, waiting for every message to settle. */
  phasesMs: { start: number; produce: number; settle: number };
  violations: string[];
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

let built: Promise<string> | undefined;

/**
 * The relay and consumer, bundled once per process (node_modules left external): a child then
 * starts in a fraction of a second instead of compiling TypeScript on every restart, which on a
 * busy machine took seconds and would make the run measure tsx rather than the outbox.
 */
function buildChildren(): Promise<string> {
  built ??= (async () => {
    const { build } = await import('tsup');
    const outDir = mkdtempSync(join(tmpdir(), 'txbarrier-outbox-chaos-build-'));
    // Node resolves the children's packages by walking up from their files.
    symlinkSync(here('../node_modules'), join(outDir, 'node_modules'), 'dir');
    await build({
      entry: { relay: here('./outbox-relay.ts'), consumer: here('./outbox-consumer.ts') },
      format: 'esm',
      outDir,
      target: 'node20',
      splitting: true,
      skipNodeModulesBundle: true,
      dts: false,
      silent: true,
      config: false,
    });
    process.once('exit', () => rmSync(outDir, { recursive: true, force: true }));
    return outDir;
  })();
  return built;
}

export async function runOutboxChaos(options: OutboxChaosOptions): Promise<OutboxChaosReport> {
  const started = Date.now();
  const { engine, broker } = options;
  const tag = randomUUID().replaceAll('-', '').slice(0, 10);
  const dir = engine === 'sqlite' ? mkdtempSync(join(tmpdir(), 'txbarrier-outbox-chaos-')) : undefined;
  const brokerUrl = new URL(broker === 'amqp' ? (options.amqpUrl ?? AMQP_URL) : broker === 'kafka' ? `kafka://${options.kafkaBroker ?? '127.0.0.1:9092'}` : (options.natsUrl ?? NATS_URL));
  const proxy = await startProxy(brokerUrl.hostname, Number(brokerUrl.port || (broker === 'amqp' ? 5672 : 4222)));
  const proxied = new URL(brokerUrl);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);

  const settings: ChaosSettings = {
    engine,
    broker,
    database: dir ? join(dir, 'producer.db') : options.databaseUrl!,
    consumerDatabase: dir ? join(dir, 'consumer.db') : options.databaseUrl!,
    outboxTable: `chaos_${tag}_outbox`,
    barrierTable: `chaos_${tag}_barrier`,
    ordersTable: `chaos_${tag}_orders`,
    effectsTable: `chaos_${tag}_effects`,
    deadTable: `chaos_${tag}_dead`,
    ...(options.relayDatabaseUrls ? { relayDatabases: options.relayDatabaseUrls } : {}),
    brokerUrl: broker === 'amqp' ? proxied.href : proxied.host,
    topic: broker === 'nats' ? `txb_outbox_chaos_${tag}.orders` : `txb-outbox-chaos-${tag}`,
    stream: `TXB_OUTBOX_CHAOS_${tag.toUpperCase()}`,
    durable: `consumer_${tag}`,
  };
  // A topic no queue, stream or Kafka topic exists for: the broker refuses it.
  const poisonTopic = broker === 'nats' ? `txb_outbox_chaos_${tag}_nobody.orders` : `txb-outbox-chaos-${tag}-nobody`;

  const producer = openStore(settings);
  const consumerDb = openStore(settings, { consumer: true, table: settings.barrierTable });
  const outbox = createOutbox(producer.store, { table: settings.outboxTable });
  const text = engine === 'mysql' ? 'VARCHAR(64)' : 'TEXT';
  await outbox.ensureSchema();
  await producer.query(`CREATE TABLE ${settings.ordersTable} (message_id ${text} NOT NULL, amount INTEGER NOT NULL)`);
  await consumerDb.store.ensureSchema();
  await consumerDb.query(`CREATE TABLE ${settings.effectsTable} (message_id ${text} NOT NULL, amount INTEGER NOT NULL)`);
  await consumerDb.query(`CREATE TABLE ${settings.deadTable} (message_id ${text} NOT NULL)`);

  const cleanups: (() => Promise<unknown>)[] = [];
  if (broker === 'amqp') {
    const connection = await amqp.connect(brokerUrl.href);
    const channel = await connection.createChannel();
    await channel.assertQueue(settings.topic, { durable: true });
    cleanups.push(async () => {
      await channel.deleteQueue(settings.topic);
      await connection.close();
    });
  } else if (broker === 'kafka') {
    const admin = (await kafkaThroughProxy(brokerUrl.host)).admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: settings.topic, numPartitions: 3 }] });
    cleanups.push(async () => {
      await admin.deleteTopics({ topics: [settings.topic] });
      await admin.disconnect();
    });
  } else {
    const nc = await natsConnect({ servers: brokerUrl.host });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: settings.stream, subjects: [settings.topic], duplicate_window: 120_000_000_000 });
    // A short ack wait: a message whose consumer died is redelivered within a second.
    await jsm.consumers.add(settings.stream, { durable_name: settings.durable, ack_policy: AckPolicy.Explicit, ack_wait: 1_000_000_000 });
    cleanups.push(async () => {
      await jsm.streams.delete(settings.stream);
      await nc.close();
    });
  }

  const violations: string[] = [];
  const counts = { duplicatesAbsorbed: 0, relayKills: 0, consumerKills: 0, connectionDrops: 0, connectionLostExits: 0 };
  const printed = { relay: '', consumer: '' };
  const reportedParked = new Set<string>();
  const children = new Set<Child>();
  let stopping = false;

  interface Child {
    process: ChildProcess;
    role: 'relay' | 'consumer';
  }

  /** Starts a child; restarts it whenever it dies, with the next kill schedule. */
  const childDir = await buildChildren();
  function supervise(role: 'relay' | 'consumer', kills: number[], index = 0): Promise<void> {
    // The schedule moves on only when a kill happened: a child that exits for another reason (its
    // broker connection dropped) is restarted with the same kill still ahead of it.
    let kill = 0;
    let firstReady: () => void;
    const ready = new Promise<void>((resolve) => (firstReady = resolve));
    const start = () => {
      const killAfter = kills[kill] ?? 0;
      const env = {
        ...process.env,
        [SETTINGS_VARIABLE]: JSON.stringify(settings),
        [role === 'relay' ? 'KILL_AFTER_PUBLISHES' : 'KILL_AFTER_COMMITS']: String(killAfter),
        RELAY_INDEX: String(index),
        ...(options.consumerWithoutBarrier ? { CHAOS_NO_BARRIER: '1' } : {}),
      };
      const spawned = spawn(process.execPath, [join(childDir, `${role}.js`)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const child: Child = { process: spawned, role };
      // A child has nothing to say on stderr: whatever it prints there is a crash or a warning the run reports.
      spawned.stderr!.setEncoding('utf8').on('data', (chunk: string) => (printed[role] += chunk));
      children.add(child);
      createInterface({ input: spawned.stdout! }).on('line', (line) => {
        let event: { event?: string; id?: string };
        try {
          event = JSON.parse(line);
        } catch {
          return;
        }
        if (event.event === 'ready') firstReady();
        else if (event.event === 'connection-lost') counts.connectionLostExits++;
        else if (event.event === 'duplicate') counts.duplicatesAbsorbed++;
        else if (event.event === 'parked' && event.id) reportedParked.add(event.id);
        else if (event.event === 'dangling') violations.push(`consumer saw a dangling action for ${event.id}`);
      });
      spawned.once('exit', (code, signal) => {
        children.delete(child);
        if (signal === 'SIGKILL') {
          counts[role === 'relay' ? 'relayKills' : 'consumerKills']++;
          kill++;
        }
        if (!stopping) setTimeout(start, 100);
        else if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL') violations.push(`${role} exited with ${code ?? signal} on stop`);
      });
    };
    start();
    return ready;
  }

  const n = options.transactions;
  const kills = options.kills ?? {
    relays: [[Math.max(2, Math.floor(n / 8)), Math.max(3, Math.floor(n / 4))], [Math.max(4, Math.floor(n / 5))]],
    consumer: [Math.max(3, Math.floor(n / 6)), Math.max(5, Math.floor(n / 3))],
  };
  await Promise.all([supervise('relay', kills.relays[0]), supervise('relay', kills.relays[1], 1), supervise('consumer', kills.consumer)]);

  const producing = Date.now();
  // The producer: business row and message in one transaction; every sixth rolls back.
  const committed = new Map<string, 'normal' | 'refused' | 'dead'>();
  const rolledBack = new Set<string>();
  const drops = new Set([Math.floor(n * 0.35), Math.floor(n * 0.7)]);
  // A drop is due at each of those points, and waits for the next transaction when no broker
  // connection is open at that moment (a relay restarting after its kill).
  let dropsDue = 0;
  let midRun: Promise<void> | undefined;
  for (let i = 0; i < n; i++) {
    if (i === Math.floor(n / 2)) {
      midRun = options.midRun?.().catch((error: unknown) => void violations.push(`the mid-run fault failed: ${error instanceof Error ? error.message : String(error)}`));
    }
    if (drops.has(i)) dropsDue++;
    if (dropsDue > 0 && proxy.dropAll() > 0) {
      dropsDue--;
      counts.connectionDrops++;
    }
    const kind = i === Math.floor(n / 2) ? 'refused' : i === Math.floor(n / 3) ? 'dead' : 'normal';
    const rollback = i % 6 === 5;
    let id: string | undefined;
    try {
      await outbox.store.transaction(async ({ tx }) => {
        id = await outbox.enqueue(tx, {
          topic: kind === 'refused' ? poisonTopic : settings.topic,
          payload: { amount: i + 1, ...(kind === 'dead' ? { poison: true } : {}) },
        });
        await producer.run(tx, placeholders(engine, `INSERT INTO ${settings.ordersTable} (message_id, amount) VALUES (?, ?)`), [id, i + 1]);
        if (rollback) throw new RolledBack();
      });
      committed.set(id!, kind);
    } catch (error) {
      if (!(error instanceof RolledBack)) throw error;
      rolledBack.add(id!);
    }
    if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 15));
  }

  // Wait until every committed message is accounted for.
  const ids = async (sql: string) => new Set((await consumerDb.query(sql)).map((r) => String(r.message_id)));
  const settled = async () => {
    const [effects, dead, parked] = await Promise.all([
      ids(`SELECT message_id FROM ${settings.effectsTable}`),
      ids(`SELECT message_id FROM ${settings.deadTable}`),
      outbox.parked({ limit: 10_000 }).then((rows) => new Set(rows.map((r) => r.id))),
    ]);
    return { done: [...committed.keys()].every((id) => effects.has(id) || dead.has(id) || parked.has(id)), parked };
  };
  await midRun;
  const produced = Date.now();
  const deadline = Date.now() + (options.settleTimeoutMs ?? 60_000);
  // Drops still due (no broker connection was open while producing: a fast run, relays restarting)
  // happen while the run settles, as soon as a connection is open.
  for (;;) {
    if (dropsDue > 0 && proxy.dropAll() > 0) {
      dropsDue--;
      counts.connectionDrops++;
    }
    if ((dropsDue === 0 && (await settled()).done) || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // A little longer, so a late duplicate delivery would show.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const settledAt = Date.now();
  stopping = true;
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.process.once('exit', () => resolve());
          child.process.kill('SIGTERM');
        }),
    ),
  );

  // The verdict, from the databases.
  const orders = (await producer.query(`SELECT message_id FROM ${settings.ordersTable}`)).map((r) => String(r.message_id));
  const effects = new Map<string, number>();
  for (const row of await consumerDb.query(`SELECT message_id FROM ${settings.effectsTable}`)) {
    effects.set(String(row.message_id), (effects.get(String(row.message_id)) ?? 0) + 1);
  }
  const dead = await ids(`SELECT message_id FROM ${settings.deadTable}`);
  const { parked } = await settled();
  for (const [role, text] of Object.entries(printed)) if (text.trim() !== '') violations.push(`a ${role} printed on stderr:\n${text}`);
  if (orders.length !== committed.size || !orders.every((id) => committed.has(id))) {
    violations.push(`the orders table holds ${orders.length} rows for ${committed.size} committed transactions`);
  }
  for (const [id, kind] of committed) {
    const applied = effects.get(id) ?? 0;
    if (applied > 1) violations.push(`${id} applied ${applied} times`);
    else if (applied === 0 && !dead.has(id) && !parked.has(id)) violations.push(`${id} (${kind}) was never applied, dead-lettered or parked`);
    if (parked.has(id) && !reportedParked.has(id)) violations.push(`${id} was parked without onParked firing`);
    // A poison message is dead-lettered by the consumer, unless the relay parked it first (its
    // publishes kept failing across the faults): either way it is reported and never applied.
    if (kind === 'dead' && !dead.has(id) && !parked.has(id)) violations.push(`poison ${id} was neither dead-lettered nor parked`);
    if (kind === 'refused' && !parked.has(id)) violations.push(`${id}, refused by the broker, was not parked`);
  }
  for (const id of effects.keys()) {
    if (rolledBack.has(id)) violations.push(`${id} was applied, but its transaction rolled back`);
    else if (!committed.has(id)) violations.push(`${id} was applied, but no producer enqueued it`);
  }
  for (const id of dead) if (rolledBack.has(id)) violations.push(`${id} was dead-lettered, but its transaction rolled back`);

  const report: OutboxChaosReport = {
    engine,
    broker,
    committed: committed.size,
    rolledBack: rolledBack.size,
    applied: [...effects.values()].filter((count) => count >= 1).length,
    ...counts,
    parked: parked.size,
    deadLettered: dead.size,
    durationMs: Date.now() - started,
    phasesMs: { start: producing - started, produce: produced - producing, settle: settledAt - produced },
    violations,
  };

  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  await proxy.close();
  if (engine !== 'sqlite') {
    for (const table of [settings.outboxTable, settings.ordersTable, settings.effectsTable, settings.deadTable, settings.barrierTable]) {
      await producer.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
  await producer.close();
  await consumerDb.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  return report;
}

class RolledBack extends Error {}
