/**
 * The smoke suite of the other runtimes: the built package (dist/) run by Bun or Deno itself, no
 * test runner, plain node:assert (`npm run test:bun`, `npm run test:deno`; see test/runtimes/run.sh).
 * The barrier's decision table on the runtime's own SQLite (bun:sqlite on Bun, node:sqlite on Deno),
 * on PostgreSQL (pg) and on MySQL/MariaDB (mysql2); the Hono front over real HTTP served by the
 * runtime (Bun.serve, Deno.serve) with the protocol's answers; idempotency keys (replay, 409, 422);
 * the NATS JetStream consumer. Sections run one after the other; the first failure exits 1.
 *
 * A section whose server cannot be reached fails with CI=true or TXBARRIER_REQUIRE_DBS=1 /
 * TXBARRIER_REQUIRE_BROKER=1 (as .ci/run sets), and is skipped, saying why, otherwise.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import mysql from 'mysql2/promise';
import { AckPolicy, connect, type JsMsg, nanos } from 'nats';
import pg from 'pg';
import type { BarrierEnv } from '../../adapters/http/hono/barrier.js';
import type { SettledEvent } from '../../src/messaging/consumer.js';
import type { BarrierStore, Outcome, StoreOptions } from '../../src/index.js';
import { ensureDatabase, freePort, MYSQL_URL, NATS_URL, POSTGRES_URL } from '../../servers/index.js';

/** An entry of the built package, typed by its source (dist/ has no types before the build). */
const dist = <T>(entry: string): Promise<T> => import(new URL(`../../dist/${entry}.js`, import.meta.url).href) as Promise<T>;
const core = await dist<typeof import('../../src/index.js')>('index');
const { Barrier, BarrierDuplicateMessage, BarrierFailure, BarrierOngoing } = core;

/** A synchronous SQLite connection as bun:sqlite and node:sqlite both offer it. */
interface SqliteConnection {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): unknown; all(...params: unknown[]): unknown[] };
  close(): unknown;
}

/** A SQLite driver of the runtime and its store. */
interface SqliteDriver {
  label: string;
  open(file: string): Promise<SqliteConnection>;
  store(db: SqliteConnection, options?: StoreOptions): Promise<BarrierStore<SqliteConnection>>;
}

/** What differs between the runtimes: their SQLite drivers, and how they serve HTTP. */
interface Runtime {
  name: string;
  sqlite: SqliteDriver[];
  serve(fetch: (request: Request) => Response | Promise<Response>, port: number): { close(): Promise<void> };
}

interface BunGlobal {
  version: string;
  serve(options: { hostname: string; port: number; fetch: (request: Request) => Response | Promise<Response> }): { stop(closeActive?: boolean): Promise<void> | void };
}
interface DenoGlobal {
  version: { deno: string };
  serve(options: { hostname: string; port: number; onListen(): void }, fetch: (request: Request) => Response | Promise<Response>): { shutdown(): Promise<void> };
}
const { Bun, Deno } = globalThis as { Bun?: BunGlobal; Deno?: DenoGlobal };

// The built-in modules are named through a variable: they exist only on their runtime, and have no types here.
const builtIn = (name: string) => import(name);

/** node:sqlite, which Deno has and Bun (1.4) has too, through `txbarrier/node-sqlite`. */
const nodeSqlite: SqliteDriver = {
  label: 'node:sqlite through txbarrier/node-sqlite',
  open: async (file) => new (await builtIn('node:sqlite')).DatabaseSync(file),
  store: async (db, options) => (await dist<typeof import('../../adapters/stores/node-sqlite.js')>('node-sqlite')).nodeSqliteStore(db as never, options),
};

function runtime(): Runtime {
  if (Bun) {
    return {
      name: `Bun ${Bun.version}`,
      sqlite: [
        {
          label: 'bun:sqlite through txbarrier/bun-sqlite',
          open: async (file) => new (await builtIn('bun:sqlite')).Database(file),
          store: async (db, options) => (await dist<typeof import('../../adapters/stores/bun-sqlite.js')>('bun-sqlite')).bunSqliteStore(db as never, options),
        },
        nodeSqlite,
      ],
      serve: (fetch, port) => {
        const server = Bun.serve({ hostname: '127.0.0.1', port, fetch });
        return { close: async () => void (await server.stop(true)) };
      },
    };
  }
  if (Deno) {
    return {
      name: `Deno ${Deno.version.deno}`,
      sqlite: [nodeSqlite],
      serve: (fetch, port) => {
        const server = Deno.serve({ hostname: '127.0.0.1', port, onListen() {} }, fetch);
        return { close: () => server.shutdown() };
      },
    };
  }
  throw new Error('the smoke suite is for Bun and Deno; on Node run npm test');
}

// ---------------------------------------------------------------------------------------------
// An engine: a store, and a business table written in its transaction.

interface Engine<Tx> {
  name: string;
  store: BarrierStore<Tx>;
  record(tx: Tx, gid: string, note: string): Promise<void>;
  notes(gid: string): Promise<string[]>;
  close(): Promise<void>;
}

/** The barrier's and the business table's names, the same on every engine. */
const TABLE = 'smoke_barrier';
const NOTES = 'smoke_notes';

async function sqliteEngine(driver: SqliteDriver): Promise<Engine<SqliteConnection>> {
  const dir = mkdtempSync(join(realpathSync(tmpdir()), 'txbarrier-smoke-'));
  const db = await driver.open(join(dir, 'smoke.db'));
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`CREATE TABLE ${NOTES} (seq INTEGER PRIMARY KEY AUTOINCREMENT, gid TEXT NOT NULL, note TEXT NOT NULL)`);
  const store = await driver.store(db, { table: TABLE });
  await store.ensureSchema();
  return {
    name: driver.label,
    store,
    record: async (tx, gid, note) => void tx.prepare(`INSERT INTO ${NOTES} (gid, note) VALUES (?, ?)`).run(gid, note),
    notes: async (gid) => (db.prepare(`SELECT note FROM ${NOTES} WHERE gid = ? ORDER BY seq`).all(gid) as { note: string }[]).map((row) => row.note),
    close: async () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresEngine(): Promise<Engine<pg.PoolClient>> {
  await ensureDatabase('postgres', POSTGRES_URL);
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 });
  const { postgresStore } = await dist<typeof import('../../adapters/stores/postgres.js')>('postgres');
  const store = postgresStore(pool, { table: TABLE });
  await store.ensureSchema();
  await pool.query(`CREATE TABLE IF NOT EXISTS ${NOTES} (seq SERIAL PRIMARY KEY, gid TEXT NOT NULL, note TEXT NOT NULL)`);
  return {
    name: 'PostgreSQL through pg',
    store,
    record: async (tx, gid, note) => void (await tx.query(`INSERT INTO ${NOTES} (gid, note) VALUES ($1, $2)`, [gid, note])),
    notes: async (gid) => (await pool.query<{ note: string }>(`SELECT note FROM ${NOTES} WHERE gid = $1 ORDER BY seq`, [gid])).rows.map((row) => row.note),
    close: () => pool.end(),
  };
}

async function mysqlEngine(): Promise<Engine<mysql.PoolConnection>> {
  await ensureDatabase('mysql', MYSQL_URL);
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 });
  const { mysqlStore } = await dist<typeof import('../../adapters/stores/mysql.js')>('mysql');
  const store = mysqlStore(pool, { table: TABLE });
  await store.ensureSchema();
  await pool.query(`CREATE TABLE IF NOT EXISTS ${NOTES} (seq INT AUTO_INCREMENT PRIMARY KEY, gid VARCHAR(128) NOT NULL, note VARCHAR(64) NOT NULL)`);
  return {
    name: 'MySQL/MariaDB through mysql2',
    store,
    record: async (tx, gid, note) => void (await tx.query(`INSERT INTO ${NOTES} (gid, note) VALUES (?, ?)`, [gid, note])),
    notes: async (gid) => ((await pool.query(`SELECT note FROM ${NOTES} WHERE gid = ? ORDER BY seq`, [gid]))[0] as { note: string }[]).map((row) => row.note),
    close: () => pool.end(),
  };
}

// ---------------------------------------------------------------------------------------------
// The checks.

type Row = [transType: string, ops: string[], outcomes: Outcome[], committed: string[]];

/** Deliveries of one branch in order, each as a fresh request, and what each must decide. */
const DECISIONS: Row[] = [
  ['saga', ['action', 'action'], ['applied', 'duplicate'], ['action']],
  ['saga', ['action', 'compensate', 'compensate', 'action'], ['applied', 'applied', 'duplicate', 'duplicate'], ['action', 'compensate']],
  ['saga', ['compensate', 'compensate', 'action'], ['null-compensation', 'duplicate', 'dangling'], []],
  ['tcc', ['try', 'confirm', 'confirm'], ['applied', 'applied', 'duplicate'], ['try', 'confirm']],
  ['tcc', ['try', 'cancel'], ['applied', 'applied'], ['try', 'cancel']],
  ['tcc', ['cancel', 'try'], ['null-compensation', 'dangling'], []],
  ['workflow', ['rollback', 'action'], ['null-compensation', 'dangling'], []],
  ['xa', ['action', 'rollback', 'rollback'], ['applied', 'applied', 'duplicate'], ['action', 'rollback']],
  ['xa', ['commit', 'commit'], ['applied', 'duplicate'], ['commit']],
];

async function decisionTable<Tx>(engine: Engine<Tx>): Promise<void> {
  const deliver = (gid: string, transType: string, op: string) =>
    Barrier.from({ transType, gid, branchId: '01', op } as never).call(engine.store, (tx) => engine.record(tx, gid, op));
  for (const [transType, ops, outcomes, committed] of DECISIONS) {
    const gid = `smoke-${randomUUID()}`;
    const seen: string[] = [];
    for (const op of ops) seen.push((await deliver(gid, transType, op)).outcome);
    assert.deepEqual(seen, outcomes, `${transType} ${ops.join(' → ')}`);
    assert.deepEqual(await engine.notes(gid), committed, `${transType} ${ops.join(' → ')}: committed business rows`);
  }

  // A failure rolls back the business row and the barrier's, so the coordinator's retry applies.
  const failing = `smoke-${randomUUID()}`;
  const failure = new BarrierFailure('insufficient funds');
  const refused = Barrier.from({ transType: 'saga', gid: failing, branchId: '01', op: 'action' }).call(engine.store, async (tx) => {
    await engine.record(tx, failing, 'half-done');
    throw failure;
  });
  await assert.rejects(refused, (error) => error === failure);
  assert.deepEqual(await engine.notes(failing), []);
  assert.equal((await deliver(failing, 'saga', 'action')).outcome, 'applied');

  // Two identical requests at once: one applies, the other is a duplicate.
  const raced = `smoke-${randomUUID()}`;
  const both = await Promise.all([deliver(raced, 'saga', 'action'), deliver(raced, 'saga', 'action')]);
  assert.deepEqual(both.map((result) => result.outcome).sort(), ['applied', 'duplicate']);
  assert.deepEqual(await engine.notes(raced), ['action']);

  // A 2-phase message: once; a repeat throws; the check-back reads committed, or seals a lost one as rolled back.
  const message = `smoke-${randomUUID()}`;
  assert.equal((await Barrier.forMessage(message).call(engine.store, (tx) => engine.record(tx, message, 'msg'))).outcome, 'applied');
  await assert.rejects(Barrier.forMessage(message).call(engine.store, () => undefined), (error) => error instanceof BarrierDuplicateMessage && error.committed);
  assert.equal(await Barrier.forMessage(message).queryPrepared(engine.store), 'committed');
  assert.equal(await Barrier.forMessage(`smoke-${randomUUID()}`).queryPrepared(engine.store), 'rolledback');
}

/** The Hono front served by the runtime: DTM's answers for each way a branch ends. */
async function honoFront<Tx>(rt: Runtime, engine: Engine<Tx>): Promise<void> {
  const { barrierRoute, queryPreparedRoute } = await dist<typeof import('../../adapters/http/hono/barrier.js')>('hono');
  const app = new Hono<BarrierEnv>();
  app.post(
    '/TransOut',
    barrierRoute(engine.store, async (tx, c) => {
      const { amount } = await c.req.json<{ amount: number }>();
      await engine.record(tx, c.get('barrier').gid, `out ${amount}`);
      return { amount };
    }),
  );
  app.post('/Refuse', barrierRoute(engine.store, () => Promise.reject(new BarrierFailure('insufficient funds'))));
  app.post('/Later', barrierRoute(engine.store, () => Promise.reject(new BarrierOngoing('not yet'))));
  app.get('/QueryPrepared', queryPreparedRoute(engine.store));
  const port = await freePort();
  const server = rt.serve(app.fetch, port);
  try {
    const send = async (path: string, query: Record<string, string>, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}?${new URLSearchParams(query)}`, {
        method: path === '/QueryPrepared' ? 'GET' : 'POST',
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
      assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8', path);
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    const branch = (gid: string, op: string) => ({ gid, trans_type: 'saga', branch_id: '01', op });

    const gid = `smoke-${randomUUID()}`;
    assert.deepEqual(await send('/TransOut', branch(gid, 'action'), { amount: 30 }), { status: 200, json: { dtm_result: 'SUCCESS', outcome: 'applied', value: { amount: 30 } } });
    assert.deepEqual(await send('/TransOut', branch(gid, 'action'), { amount: 30 }), { status: 200, json: { dtm_result: 'SUCCESS', outcome: 'duplicate' } });
    assert.deepEqual(await engine.notes(gid), ['out 30']);

    const late = `smoke-${randomUUID()}`;
    assert.deepEqual(await send('/TransOut', branch(late, 'compensate'), { amount: 5 }), { status: 200, json: { dtm_result: 'SUCCESS', outcome: 'null-compensation' } });
    assert.deepEqual(await send('/TransOut', branch(late, 'action'), { amount: 5 }), { status: 200, json: { dtm_result: 'SUCCESS', outcome: 'dangling' } });
    assert.deepEqual(await engine.notes(late), []);

    assert.deepEqual(await send('/Refuse', branch(`smoke-${randomUUID()}`, 'action')), { status: 409, json: { dtm_result: 'FAILURE', message: 'insufficient funds' } });
    assert.deepEqual(await send('/Later', branch(`smoke-${randomUUID()}`, 'action')), { status: 425, json: { dtm_result: 'ONGOING' } });
    const bad = await send('/TransOut', { gid, trans_type: 'saga', op: 'undo' }, { amount: 1 });
    assert.equal(bad.status, 400);
    assert.deepEqual((bad.json.problems as { field: string }[]).map((problem) => problem.field), ['branch_id', 'op']);

    const message = `smoke-${randomUUID()}`;
    await Barrier.forMessage(message).call(engine.store, () => undefined);
    assert.deepEqual(await send('/QueryPrepared', { gid: message }), { status: 200, json: { dtm_result: 'SUCCESS', state: 'committed' } });
    const lost = await send('/QueryPrepared', { gid: `smoke-${randomUUID()}` });
    assert.deepEqual([lost.status, lost.json.dtm_result, lost.json.state], [409, 'FAILURE', 'rolledback']);
  } finally {
    await server.close();
  }
}

/** Idempotency keys on Hono: a replay, 422 for a reused key, 409 while the first is in flight. */
async function idempotencyKeys<Tx>(rt: Runtime, engine: Engine<Tx>): Promise<void> {
  const { idempotentRoute } = await dist<typeof import('../../adapters/http/hono/idempotency.js')>('idempotency/hono');
  const { ensureIdempotencySchema } = await dist<typeof import('../../src/idempotency/index.js')>('idempotency');
  const table = 'smoke_idempotency';
  await ensureIdempotencySchema(engine.store, { table });
  let held: { entered: () => void; release: Promise<void> } | undefined;
  const app = new Hono();
  app.post(
    '/payments',
    idempotentRoute(
      engine.store,
      async (tx, c) => {
        const { note, amount } = await c.req.json<{ note: string; amount: number }>();
        await engine.record(tx, note, `paid ${amount}`);
        if (held) {
          held.entered();
          await held.release;
        }
        return { status: 201, body: { note, amount } };
      },
      { scope: (c) => c.req.header('x-client') ?? 'anonymous', table },
    ),
  );
  const port = await freePort();
  const server = rt.serve(app.fetch, port);
  try {
    const pay = async (key: string, body: { note: string; amount: number }) => {
      const response = await fetch(`http://127.0.0.1:${port}/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key, 'x-client': 'smoke' },
        body: JSON.stringify(body),
      });
      return { status: response.status, replayed: response.headers.get('idempotent-replayed'), retryAfter: response.headers.get('retry-after'), text: await response.text() };
    };
    const note = `smoke-${randomUUID()}`;
    const key = `"${randomUUID()}"`;
    const first = await pay(key, { note, amount: 25 });
    assert.deepEqual([first.status, first.replayed, JSON.parse(first.text)], [201, null, { note, amount: 25 }]);
    const again = await pay(key, { note, amount: 25 });
    assert.deepEqual([again.status, again.replayed, again.text], [201, 'true', first.text]);
    const changed = await pay(key, { note, amount: 99 });
    assert.deepEqual([changed.status, JSON.parse(changed.text).code], [422, 'idempotency-key-reused']);
    assert.deepEqual(await engine.notes(note), ['paid 25']);

    const slow = `smoke-${randomUUID()}`;
    const slowKey = `"${randomUUID()}"`;
    let release!: () => void;
    const entered = new Promise<void>((resolve) => (held = { entered: resolve, release: new Promise((r) => (release = r)) }));
    const inFlight = pay(slowKey, { note: slow, amount: 5 });
    await entered;
    held = undefined;
    const concurrent = await pay(slowKey, { note: slow, amount: 5 });
    assert.deepEqual([concurrent.status, concurrent.retryAfter, JSON.parse(concurrent.text).code], [409, '1', 'idempotency-key-in-flight']);
    release();
    assert.equal((await inFlight).status, 201);
    assert.equal((await pay(slowKey, { note: slow, amount: 5 })).replayed, 'true');
    assert.deepEqual(await engine.notes(slow), ['paid 5']);
  } finally {
    await server.close();
  }
}

/**
 * The NATS JetStream consumer: each message applied once; a redelivery after a lost ack recognised
 * as a duplicate; a `BarrierFailure` dead-lettered with nothing committed.
 */
async function natsConsumer<Tx>(engine: Engine<Tx>): Promise<void> {
  const { consumeNats } = await dist<typeof import('../../adapters/brokers/nats/consumer.js')>('nats');
  const nc = await connect({ servers: NATS_URL, timeout: 3000 });
  const jsm = await nc.jetstreamManager();
  const stream = `txb_smoke_${randomUUID().slice(0, 8)}`;
  try {
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    await jsm.consumers.add(stream, { durable_name: 'smoke', ack_policy: AckPolicy.Explicit, ack_wait: nanos(2000), max_deliver: -1 });
    const source = await nc.jetstream({ timeout: 2000 }).consumers.get(stream, 'smoke');
    const [plain, lostAck, poison] = ['plain', 'lost-ack', 'poison'].map((name) => `smoke-${name}-${randomUUID()}`) as [string, string, string];
    const settled: SettledEvent<JsMsg>[] = [];
    let allSettled!: () => void;
    const done = new Promise<void>((resolve) => (allSettled = resolve));
    const consumer = await consumeNats({
      // The first ack of `lostAck` becomes a nak, as if the connection dropped after the commit: JetStream delivers it again.
      jetStreamConsumer: {
        info: (cached) => source.info(cached),
        consume: async (options) => {
          const messages = await source.consume(options);
          return {
            close: () => messages.close(),
            async *[Symbol.asyncIterator]() {
              for await (const message of messages) {
                const losing = message.headers?.get('Nats-Msg-Id') === lostAck && message.info.deliveryCount === 1;
                yield losing ? Object.assign(Object.create(message) as JsMsg, { ackAck: async () => (message.nak(), true) }) : message;
              }
            },
          };
        },
      },
      store: engine.store,
      consumer: 'smoke',
      handle: async (tx, message: JsMsg) => {
        const id = message.headers!.get('Nats-Msg-Id');
        if (id === poison) throw new BarrierFailure('cannot apply');
        await engine.record(tx, id, 'consumed');
      },
      onSettled: (event) => {
        settled.push(event);
        if (settled.length === 4) allSettled();
      },
    });
    const js = nc.jetstream();
    for (const id of [plain, lostAck, poison]) await js.publish(`${stream}.payments`, new TextEncoder().encode(id), { msgID: id });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`4 settlements expected within 20 s; saw ${JSON.stringify(settled.map((e) => [e.messageId, e.settlement]))}`)), 20_000);
    });
    await Promise.race([done, late]).finally(() => clearTimeout(timer));
    await consumer.stop();
    const seen = settled.map((event) => `${event.messageId === plain ? 'plain' : event.messageId === lostAck ? 'lost-ack' : 'poison'}:${event.settlement}`).sort();
    assert.deepEqual(seen, ['lost-ack:applied', 'lost-ack:duplicate', 'plain:applied', 'poison:dead-letter']);
    assert.deepEqual([await engine.notes(plain), await engine.notes(lostAck), await engine.notes(poison)], [['consumed'], ['consumed'], []]);
  } finally {
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The run.

const rt = runtime();
const requireDbs = process.env.CI === 'true' || process.env.TXBARRIER_REQUIRE_DBS === '1';
const requireBroker = process.env.CI === 'true' || process.env.TXBARRIER_REQUIRE_BROKER === '1';
const started = Date.now();
let skipped = 0;

/** Opens what a section needs; a server that cannot be reached skips it, or fails where it is required. */
async function reach<T>(what: string, required: boolean, open: () => Promise<T>): Promise<T | undefined> {
  try {
    return await open();
  } catch (error) {
    if (required) throw new Error(`${what} cannot be reached, and this run requires it`, { cause: error });
    console.log(`smoke: SKIPPING everything on ${what}: ${error instanceof Error ? error.message : String(error)}`);
    skipped++;
    return undefined;
  }
}

async function section(name: string, check: () => Promise<void>): Promise<void> {
  const begun = Date.now();
  await check();
  console.log(`smoke: ✓ ${name} (${((Date.now() - begun) / 1000).toFixed(1)} s)`);
}

/** `storeFromUrl` on a SQLite file: the runtime's node:sqlite, though better-sqlite3 is installed beside it and cannot load here. */
async function sqliteUrl(): Promise<void> {
  const { storeFromUrl } = await dist<typeof import('../../adapters/url.js')>('url');
  const dir = mkdtempSync(join(realpathSync(tmpdir()), 'txbarrier-smoke-'));
  try {
    const opened = await storeFromUrl(`sqlite:${join(dir, 'url.db')}`);
    try {
      await opened.store.ensureSchema();
      const deliver = () => Barrier.from({ transType: 'saga', gid: 'url', branchId: '01', op: 'action' }).call(opened.store, () => 'ran');
      assert.deepEqual([(await deliver()).outcome, (await deliver()).outcome], ['applied', 'duplicate']);
    } finally {
      await opened.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every subpath export loads, through the package's own `exports` (ESM), with no driver imported at load time. */
async function everySubpath(): Promise<void> {
  const { exports } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, unknown> };
  const names = Object.keys(exports).filter((path) => path !== './package.json');
  for (const path of names) await import(path === '.' ? 'txbarrier' : `txbarrier/${path.slice(2)}`);
  assert.ok(names.length > 30, `${names.length} subpaths`);
}

/** The sections that serve requests or messages, on one engine. */
async function served<Tx>(engine: Engine<Tx>): Promise<void> {
  await section(`Hono front on ${engine.name}, served by ${rt.name}`, () => honoFront(rt, engine));
  await section(`idempotency keys on Hono, ${engine.name}`, () => idempotencyKeys(rt, engine));
  const nats = await reach('NATS', requireBroker, async () => {
    await (await connect({ servers: NATS_URL, timeout: 3000 })).close();
    return true;
  });
  if (nats) await section(`NATS JetStream consumer on ${engine.name}`, () => natsConsumer(engine));
}

console.log(`smoke: ${rt.name}, the package built in dist/`);
const sqlites: Engine<SqliteConnection>[] = [];
for (const driver of rt.sqlite) sqlites.push(await sqliteEngine(driver));
const postgres = await reach('PostgreSQL', requireDbs, postgresEngine);
const mariadb = await reach('MySQL/MariaDB', requireDbs, mysqlEngine);
try {
  await section('every subpath of the package loads', everySubpath);
  await section('storeFromUrl on a SQLite file', sqliteUrl);
  for (const sqlite of sqlites) await section(`decision table on ${sqlite.name}`, () => decisionTable(sqlite));
  if (postgres) await section(`decision table on ${postgres.name}`, () => decisionTable(postgres));
  if (mariadb) await section(`decision table on ${mariadb.name}`, () => decisionTable(mariadb));
  // The fronts and the consumer on PostgreSQL where it is reachable, as a service would run them; else on SQLite.
  await (postgres ? served(postgres) : served(sqlites[0]!));
} finally {
  for (const engine of [...sqlites, postgres, mariadb]) await engine?.close();
}
console.log(`smoke: ${rt.name} passed in ${((Date.now() - started) / 1000).toFixed(1)} s${skipped ? `; ${skipped} server(s) skipped` : ''}`);
