import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresStore } from '../../adapters/stores/postgres.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import {
  bodyLimitOf,
  canonicalJson,
  ensureIdempotencySchema,
  type IdempotencyEvent,
  idempotencyGuard,
  IdempotencyResponseError,
  IdempotencyResponseTooLarge,
  idempotencySchemaSql,
  IdempotencyScopeError,
  parseIdempotencyKey,
  requestFingerprint,
} from '../../src/idempotency/guard.js';
import { BarrierConfigError, type Logger } from '../../src/index.js';
import { ENGINES, type EngineHarness, newKey, openEngine } from './harness.js';
import { mysqlPool, postgresPool } from '../support/server-harness.js';
import { hasServer, testsEngine } from '../support/servers.js';
import { type Db, openTempDb } from '../stores/sqlite-harness.js';
import { countingPostgresPool } from '../support/counting.js';

const read = (engine: string) => readFileSync(new URL(`../../sql/idempotency-${engine}.sql`, import.meta.url), 'utf8');
const statementsOf = (text: string) =>
  text
    .replace(/^(--.*\n)+\n/, '')
    .split(/;\n(?:\n|$)/)
    .filter((statement) => statement.length > 0);

describe('sql/idempotency-*.sql', () => {
  it.each(['mysql', 'postgres', 'sqlite'] as const)('sql/idempotency-%s.sql holds what ensureIdempotencySchema runs', (engine) => {
    expect(read(engine)).toMatch(/^-- /);
    expect(statementsOf(read(engine))).toEqual(idempotencySchemaSql(engine));
  });

  const renamed = (engine: string, table: string) => statementsOf(read(engine)).map((s) => s.replaceAll('idempotency_key', table));
  it('runs on SQLite, twice', () => {
    const db = new Database(':memory:');
    for (let i = 0; i < 2; i++) for (const statement of renamed('sqlite', 'keys')) db.exec(statement);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'keys' ORDER BY name").all()).toEqual([
      { name: 'keys' },
      { name: 'keys_expires_at' },
      { name: 'sqlite_autoindex_keys_1' },
    ]);
    db.close();
  });
  if (testsEngine('mysql')) it.skipIf(!hasServer('mysql'))('runs on MySQL/MariaDB, twice', async () => {
    const pool = mysqlPool({ connectionLimit: 1 });
    const table = `idem_sql_${randomUUID().slice(0, 8)}`;
    try {
      for (let i = 0; i < 2; i++) for (const statement of renamed('mysql', table)) await pool.query(statement);
      const [rows] = await pool.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?', [table]);
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    }
  });
  it.skipIf(!hasServer('postgres'))('runs on PostgreSQL, twice', async () => {
    const pool = postgresPool({ max: 1 });
    const table = `idem_sql_${randomUUID().slice(0, 8)}`;
    try {
      for (let i = 0; i < 2; i++) for (const statement of renamed('postgres', table)) await pool.query(statement);
      expect((await pool.query('SELECT to_regclass($1) IS NOT NULL AS exists', [table])).rows).toEqual([{ exists: true }]);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    }
  });
});

describe('the Idempotency-Key header', () => {
  it('is an sf-string: quoted printable ASCII, escapes only for " and \\', () => {
    expect(parseIdempotencyKey('"8e03978e-40d5-43e8-bc93-6894a57f9324"', 255)).toBe('8e03978e-40d5-43e8-bc93-6894a57f9324');
    expect(parseIdempotencyKey('  "a b"  ', 255)).toBe('a b');
    expect(parseIdempotencyKey('"say \\"hi\\" \\\\"', 255)).toBe('say "hi" \\');
    // Escapes at either end, and a backslash that escapes the closing quote away.
    expect(parseIdempotencyKey('"\\"a\\\\"', 255)).toBe('"a\\');
    expect(parseIdempotencyKey('"a\\"', 255)).toEqual({ kind: 'invalid', detail: 'the Idempotency-Key header is missing its closing quote' });
    expect(parseIdempotencyKey(undefined, 255)).toEqual({ kind: 'missing' });
    expect(parseIdempotencyKey('', 255)).toEqual({ kind: 'missing' });
    for (const bad of ['abc', '"abc', '"abc"x', '"a", "b"', '"\\n"', '"é"', '""', '"\u0007"', '"abcd"']) {
      expect([bad, parseIdempotencyKey(bad, 3)]).toMatchObject([bad, { kind: 'invalid' }]);
    }
    expect(parseIdempotencyKey(['"a"', '"b"'], 255)).toMatchObject({ kind: 'invalid' });
  });

  it('takes a bare RFC 8941 token only where asked, as the same key as its quoted form', () => {
    expect(parseIdempotencyKey('abc', 255)).toMatchObject({ kind: 'invalid' });
    expect([parseIdempotencyKey('abc', 255, true), parseIdempotencyKey('"abc"', 255, true), parseIdempotencyKey('  abc ', 255, true)]).toEqual(['abc', 'abc', 'abc']);
    // A UUID may start with a digit, which a strict sf-token may not: such keys are what bare-key clients send.
    expect(parseIdempotencyKey("5f2c*:/!#$%&'+-.^_`|~Z", 255, true)).toBe("5f2c*:/!#$%&'+-.^_`|~Z");
    for (const bad of ['a b', 'a,b', 'a;b', 'a"', '(a)', 'é', '\u00e9', 'abcd']) {
      expect([bad, parseIdempotencyKey(bad, 3, true)]).toMatchObject([bad, { kind: 'invalid' }]);
    }
  });

  it('fingerprints method, target and body bytes; canonical JSON ignores key order', () => {
    const base = requestFingerprint('POST', '/pay', '{"a":1}');
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(requestFingerprint('post', '/pay', Buffer.from('{"a":1}'))).toBe(base);
    expect(requestFingerprint('PUT', '/pay', '{"a":1}')).not.toBe(base);
    expect(requestFingerprint('POST', '/pay?x=1', '{"a":1}')).not.toBe(base);
    expect(requestFingerprint('POST', '/pay', '{"a": 1}')).not.toBe(base);
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });
});

describe('idempotencyGuard', () => {
  let db: Db;
  let store: ReturnType<typeof sqliteStore<Db>>;
  const table = 'idem_guard';
  const request = (key: string, body = '{}') => ({ method: 'POST', target: '/t', key: `"${key}"`, body });

  beforeAll(async () => {
    db = openTempDb().db;
    store = sqliteStore(db);
    await ensureIdempotencySchema(store, { table });
  });
  afterAll(() => db.close());
  const rows = (key: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE idem_key = ?`).get(key) as { n: number }).n;

  it('refuses bad options when the route is made', () => {
    expect(() => idempotencyGuard(store, {} as never)).toThrow(BarrierConfigError);
    expect(() => idempotencyGuard(store, { scope: 'global', lifetime: 'soon' })).toThrow(BarrierConfigError);
    expect(() => idempotencyGuard(store, { scope: 'global', lifetime: 0 })).toThrow(BarrierConfigError);
    expect(() => idempotencyGuard(store, { scope: 'global', maxKeyLength: 256 })).toThrow(BarrierConfigError);
    expect(() => idempotencyGuard(store, { scope: 'global', table: 'no such; table' })).toThrow(BarrierConfigError);
    for (const maxBodyBytes of [-1, 1.5, Number.NaN]) expect(() => bodyLimitOf({ maxBodyBytes })).toThrow(BarrierConfigError);
    expect([bodyLimitOf({}), bodyLimitOf({ maxBodyBytes: 0 })]).toEqual([1_048_576, 0]);
  });

  it('throws IdempotencyScopeError for a scope that is no string, and writes nothing', async () => {
    const guard = idempotencyGuard<Db, { user?: string }>(store, { scope: (req) => req.user as string, table });
    const { key } = newKey();
    const error = await guard.respond(request(key), {}, () => ({ status: 200 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyScopeError);
    expect((error as IdempotencyScopeError).code).toBe('ERR_TXBARRIER_IDEMPOTENCY_SCOPE');
    expect(rows(key)).toBe(0);
  });

  it('rolls back and stores nothing for a response that is not one, or is too large', async () => {
    const guard = idempotencyGuard<Db, unknown>(store, { scope: 'global', table, maxResponseBytes: 100 });
    const note = (tx: Db) => tx.prepare(`INSERT INTO ${table} (scope, idem_key, fingerprint, created_at, expires_at) VALUES ('side', ?, '', 0, 0)`).run(randomUUID());
    const sideRows = () => (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE scope = 'side'`).get() as { n: number }).n;
    for (const [response, type] of [
      [{ status: 99 }, IdempotencyResponseError],
      [{ status: 200, headers: { x: 1 } }, IdempotencyResponseError],
      [{ status: 200, body: { n: 1n } }, IdempotencyResponseError],
      [{ status: 200, body: 'x'.repeat(101) }, IdempotencyResponseTooLarge],
    ] as const) {
      const { key } = newKey();
      const error = await guard.respond(request(key), {}, (tx) => (note(tx), response as never)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(type);
      expect((error as { code: string }).code).toMatch(/^ERR_TXBARRIER_IDEMPOTENCY_RESPONSE/);
      expect(rows(key)).toBe(0);
    }
    expect(sideRows()).toBe(0);
  });

  it('reports every outcome to onOutcome and the logger, so replays and conflicts can be counted', async () => {
    const events: IdempotencyEvent[] = [];
    const lines: [string, string | undefined][] = [];
    const at = (level: string) => (_: unknown, message?: string) => void lines.push([level, message]);
    const logger: Logger = { debug: at('debug'), info: at('info'), error: at('error') };
    const guard = idempotencyGuard<Db, unknown>(store, { scope: 'global', table, logger, onOutcome: (event) => void events.push(event) });
    const { key } = newKey();
    const boom = new Error('boom');
    await guard.respond(request(key), {}, () => ({ status: 201, body: 'ok' }));
    await guard.respond(request(key), {}, () => ({ status: 201 }));
    await guard.respond(request(key, '{"other":1}'), {}, () => ({ status: 201 }));
    await guard.respond({ ...request(key), key: 'bare' }, {}, () => ({ status: 201 }));
    await expect(guard.respond(request(newKey().key), {}, () => Promise.reject(boom))).rejects.toBe(boom);
    expect(events.map((e) => [e.outcome, e.status])).toEqual([
      ['executed', 201],
      ['replayed', 201],
      ['mismatch', 422],
      ['invalid-key', 400],
      ['error', undefined],
    ]);
    expect(events[0]).toMatchObject({ method: 'POST', target: '/t', key, scope: '' });
    expect(events[4]!.error).toBe(boom);
    expect(lines.map(([level]) => level)).toEqual(['debug', 'debug', 'info', 'info', 'error']);
  });

  it('runs each request in a span with the table and its outcome, when OpenTelemetry is there', async () => {
    const exporter = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    try {
      const guard = idempotencyGuard<Db, unknown>(store, { scope: 'global', table });
      const { key } = newKey();
      await guard.respond(request(key), {}, () => ({ status: 201 }));
      await guard.respond(request(key), {}, () => ({ status: 201 }));
      expect(exporter.getFinishedSpans().map((span) => [span.name, span.attributes])).toEqual(
        ['executed', 'replayed'].map((outcome) => [
          'txbarrier idempotency',
          { 'db.system.name': 'sqlite', 'db.collection.name': table, 'http.request.method': 'POST', 'txbarrier.idempotency.outcome': outcome },
        ]),
      );
    } finally {
      trace.disable();
    }
  });

  it('answers 409, not a wait, when another process holds the SQLite file (busy)', async () => {
    const { db: own, dir } = openTempDb();
    const busy = new Database(join(dir, 'test.db'), { timeout: 0 });
    const busyStore = sqliteStore(busy);
    await ensureIdempotencySchema(sqliteStore(own), { table });
    own.exec('BEGIN IMMEDIATE');
    try {
      const guard = idempotencyGuard<Db, unknown>(busyStore, { scope: 'global', table });
      const answer = await guard.respond(request(newKey().key), {}, () => ({ status: 201 }));
      expect(answer.status).toBe(409);
    } finally {
      own.exec('ROLLBACK');
      busy.close();
      own.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(ENGINES)('on %s', (engine) => {
  let h: EngineHarness;
  beforeAll(async () => (h = await openEngine(engine)));
  afterAll(() => h.close());

  it('keeps scopes apart byte for byte: case, accents and trailing spaces make another client', async () => {
    const guard = idempotencyGuard<any, string>(h.store, { scope: (client) => client, table: h.table });
    const { header } = newKey();
    const outcomes = [];
    for (const client of ['carol', 'Carol', 'carol ', 'carōl', 'carol']) {
      outcomes.push((await guard.respond({ method: 'POST', target: '/t', key: header, body: '' }, client, () => ({ status: 201 }))).outcome);
    }
    expect(outcomes).toEqual(['executed', 'executed', 'executed', 'executed', 'replayed']);
  });

});

describe.each(ENGINES.filter((engine) => engine === 'postgres'))('on %s', (engine) => {
  let h: EngineHarness;
  beforeAll(async () => (h = await openEngine(engine)));
  afterAll(() => h.close());

  it("restores the lock wait after the claim, so the handler's own statements wait as configured", async () => {
    const guard = idempotencyGuard<any, unknown>(h.store, { scope: 'global', table: h.table });
    const answer = await guard.respond({ method: 'POST', target: '/t', key: newKey().header, body: '' }, {}, async (tx) => ({
      status: 200,
      body: (await tx.query('SHOW lock_timeout')).rows[0].lock_timeout,
    }));
    const configured = await h.store.transaction(async (connection) => (await connection.select('SHOW lock_timeout', []))[0]!.lock_timeout);
    expect([Buffer.from(answer.body).toString(), configured]).toEqual([configured, '2s']);
  });

  it('restores the lock wait after taking over an expired key too', async () => {
    const guard = idempotencyGuard<any, unknown>(h.store, { scope: 'global', table: h.table, lifetime: 1 });
    const lockTimeout = async (tx: any) => ({ status: 200, body: (await tx.query('SHOW lock_timeout')).rows[0].lock_timeout as string });
    const request = { method: 'POST', target: '/t', key: newKey().header, body: '' };
    expect((await guard.respond(request, {}, lockTimeout)).outcome).toBe('executed');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const answer = await guard.respond(request, {}, lockTimeout);
    expect([answer.outcome, Buffer.from(answer.body).toString()]).toEqual(['executed', '2s']);
  });

  it('sends a new key in as many statements as MariaDB: BEGIN, the claim (which puts the lock wait back), the response, COMMIT', async () => {
    const pool = postgresPool({ max: 1 });
    const sent: string[] = [];
    const counting = countingPostgresPool(pool, sent);
    try {
      const guard = idempotencyGuard<any, unknown>(postgresStore(counting), { scope: 'global', table: h.table });
      const respond = (header: string) => guard.respond({ method: 'POST', target: '/t', key: header, body: '' }, {}, () => ({ status: 201 }));
      await respond(newKey().header);
      sent.length = 0;
      const { header } = newKey();
      expect((await respond(header)).outcome).toBe('executed');
      expect(sent.map((sql) => sql.split(/\s/)[0])).toEqual(['BEGIN;', 'WITH', 'UPDATE', 'COMMIT']);
      sent.length = 0;
      expect((await respond(header)).outcome).toBe('replayed');
      // A replay restores nothing: it reads the row and commits; the claim found the key taken.
      expect(sent.map((sql) => sql.split(/\s/)[0])).toEqual(['BEGIN;', 'WITH', 'SELECT', 'COMMIT']);
    } finally {
      await pool.end();
    }
  });
});
