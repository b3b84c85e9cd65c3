import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Request } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { barrierMiddleware, barrierRoute, queryPreparedRoute } from '../../adapters/http/express/barrier.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { Barrier, BarrierDuplicateMessage, BarrierFailure, BarrierOngoing } from '../../src/index.js';
import { dtmQuery, EXPRESS_VERSIONS, type Listening, listen, request } from './express-http.js';
import { awaitWarnings } from '../support/warnings.js';
import { type Db, openTempDb } from '../stores/sqlite-harness.js';

describe.each(EXPRESS_VERSIONS)('barrier routes on %s', (_, express) => {
  let db: Db;
  let dir: string;
  let file: string;
  let server: Listening;
  /** Another database file the handlers can reach, whose write lock a test can hold. */
  let side: Db;
  let sideHolder: Db;
  const errors: unknown[] = [];
  const store = () => sqliteStore(db);
  const notes = (gid: string) =>
    (db.prepare('SELECT note FROM express_ledger WHERE gid = ? ORDER BY seq').all(gid) as { note: string }[]).map((r) => r.note);
  const barrierRows = (gid: string) => (db.prepare('SELECT count(*) AS n FROM barrier WHERE gid = ?').get(gid) as { n: number }).n;
  const gidOf = () => `express-${randomUUID()}`;
  const post = (path: string, query: string, body?: unknown, headers: Record<string, string> = {}) =>
    request(`${server.url}${path}?${query}`, {
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    ({ db, dir, file } = openTempDb());
    db.exec('CREATE TABLE express_ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, gid TEXT NOT NULL, note TEXT NOT NULL)');
    side = new Database(join(dir, 'side.db'), { timeout: 0 });
    side.exec('CREATE TABLE side_effects (gid TEXT NOT NULL)');
    sideHolder = new Database(join(dir, 'side.db'));
    await store().ensureSchema();

    const note = (tx: Db, req: { barrier: Barrier }, text: string) =>
      tx.prepare('INSERT INTO express_ledger (gid, note) VALUES (?, ?)').run(req.barrier.gid, text);
    const app = express();
    app.use(express.json({ limit: '1kb' }));
    app.use('/mw', barrierMiddleware());
    // Declaration merging types req.barrier on Express's own Request, no cast.
    app.get('/mw/whoami', (req: Request, res) => {
      res.json({ gid: req.barrier?.gid, op: req.barrier?.op });
    });
    app.post(
      '/mw/note',
      barrierRoute(store(), async (tx, req) => {
        const text: string = req.body.text.trim();
        note(tx, req, `${req.barrier.op}:${text}`);
        return { noted: text };
      }),
    );
    app.post(
      '/note',
      barrierRoute(store(), (tx, req) => {
        note(tx, req, req.barrier.op);
        return req.body?.reply;
      }),
    );
    app.post(
      '/fail',
      barrierRoute(store(), (tx, req) => {
        note(tx, req, 'half-done');
        throw new BarrierFailure(req.body.message);
      }),
    );
    app.post(
      '/ongoing',
      barrierRoute(store(), () => {
        throw new BarrierOngoing('inventory not ready');
      }),
    );
    app.post(
      '/side',
      barrierRoute(store(), (tx, req) => {
        note(tx, req, 'before side effect');
        // A real SQLITE_BUSY from the business code's own SQL when a test holds side.db's lock.
        side.prepare('INSERT INTO side_effects VALUES (?)').run(req.barrier.gid);
      }),
    );
    app.post(
      '/broken',
      barrierRoute(
        store(),
        (tx) => {
          tx.prepare('SELECT secret_column FROM no_such_table').all();
        },
        { onError: (error) => errors.push(error) },
      ),
    );
    app.post(
      '/bigint',
      barrierRoute(store(), (tx, req) => {
        note(tx, req, 'bigint');
        return 1n;
      }),
    );
    app.post(
      '/custom',
      barrierRoute(store(), (tx, req) => note(tx, req, 'custom'), {
        // Another coordinator's scheme: one header carries saga id, step and phase.
        extract: (req) => {
          const [gid, branchId, op] = String(req.headers['x-saga-step']).split('/');
          return Barrier.from({ transType: 'saga', gid: gid ?? '', branchId: branchId ?? '', op: op ?? '' });
        },
      }),
    );
    app.get('/query-prepared', queryPreparedRoute(store()));
    server = await listen(app);
  });

  afterAll(async () => {
    await server?.close();
    for (const connection of [db, side, sideHolder]) connection?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies once and answers SUCCESS with the outcome, and the value only when applied', async () => {
    const gid = gidOf();
    const first = await post('/note', dtmQuery(gid, 'action'), { reply: { balance: 70 } });
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^application\/json/);
    expect(first.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied', value: { balance: 70 } });
    const again = await post('/note', dtmQuery(gid, 'action'), { reply: { balance: 70 } });
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'duplicate' });
    expect(notes(gid)).toEqual(['action']);
  });

  it('answers SUCCESS to a null compensation and to the dangling action after it, applying neither', async () => {
    const gid = gidOf();
    const compensation = await post('/note', dtmQuery(gid, 'compensate'));
    expect([compensation.status, compensation.json]).toEqual([200, { dtm_result: 'SUCCESS', outcome: 'null-compensation' }]);
    const late = await post('/note', dtmQuery(gid, 'action'));
    expect([late.status, late.json]).toEqual([200, { dtm_result: 'SUCCESS', outcome: 'dangling' }]);
    expect(notes(gid)).toEqual([]);
  });

  it('reads the dtm-* headers when the query names no branch', async () => {
    const gid = gidOf();
    const headers = { 'dtm-gid': gid, 'dtm-trans_type': 'tcc', 'dtm-branch_id': '02', 'dtm-op': 'try' };
    const answer = await post('/note', '', undefined, headers);
    expect(answer.json).toMatchObject({ dtm_result: 'SUCCESS', outcome: 'applied' });
    expect(db.prepare('SELECT branch_id, op FROM barrier WHERE gid = ?').get(gid)).toEqual({ branch_id: '02', op: 'try' });
  });

  it('sets req.barrier in the middleware for every route behind it, and the route reuses it', async () => {
    const gid = gidOf();
    const seen = await request(`${server.url}/mw/whoami?${dtmQuery(gid, 'compensate')}`, { method: 'GET' });
    expect(seen.json).toEqual({ gid, op: 'compensate' });
    const applied = await post('/mw/note', dtmQuery(gid, 'action', 'saga', '03'), { text: 'hello' });
    expect(applied.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied', value: { noted: 'hello' } });
    expect(notes(gid)).toEqual(['action:hello']);
  });

  it.each([
    ['/mw/note', 'the middleware'],
    ['/note', 'the route alone'],
  ])('refuses bad barrier fields with 400 naming each one (%s, %s), running nothing', async (path) => {
    const gid = gidOf();
    const query = `gid=${gid}&gid=${gid}&trans_type=saga&branch_id=&op=undo`;
    const answer = await post(path, query, { text: 'never' });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: 'invalid barrier request',
      problems: [
        { field: 'gid', problem: 'is repeated' },
        { field: 'branch_id', problem: 'is empty' },
        { field: 'op', problem: 'is not an op of saga (action, compensate)' },
      ],
    });
    const missing = await post(path, '', { text: 'never' });
    expect(missing.status).toBe(400);
    expect((missing.json?.problems as { field: string }[]).map((p) => p.field)).toEqual(['trans_type', 'gid', 'branch_id', 'op']);
    expect(barrierRows(gid)).toBe(0);
    expect(notes(gid)).toEqual([]);
  });

  it('answers BarrierFailure with 409 FAILURE, rolls back, and escapes ONGOING in the message', async () => {
    const gid = gidOf();
    const message = 'ONGOING audit blocks this transfer';
    const answer = await post('/fail', dtmQuery(gid, 'action'), { message });
    expect(answer.status).toBe(409);
    expect(answer.json).toEqual({ dtm_result: 'FAILURE', message });
    // DTM reads the word ONGOING anywhere in a body as "retry"; the raw body must not contain it.
    expect(answer.text).not.toContain('ONGOING');
    expect(notes(gid)).toEqual([]);
    expect(barrierRows(gid)).toBe(0);
  });

  it('never lets a success body contain FAILURE or ONGOING as raw text', async () => {
    const gid = gidOf();
    const reply = { status: 'FAILURE_EXPECTED_LATER', next: ['ONGOING'] };
    const answer = await post('/note', dtmQuery(gid, 'action'), { reply });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied', value: reply });
    expect(answer.text).not.toMatch(/FAILURE|ONGOING/);
  });

  it('answers BarrierOngoing with 425 ONGOING', async () => {
    const answer = await post('/ongoing', dtmQuery(gidOf(), 'action'));
    expect([answer.status, answer.json]).toEqual([425, { dtm_result: 'ONGOING' }]);
  });

  it('answers 425 when the barrier finds the database busy, and applies on the retry', async () => {
    const gid = gidOf();
    const busyDb = new Database(file, { timeout: 0 });
    const holder = new Database(file);
    const busyApp = express();
    busyApp.post('/note', barrierRoute(sqliteStore(busyDb), (tx) => tx.prepare('INSERT INTO express_ledger (gid, note) VALUES (?, ?)').run(gid, 'x')));
    const busyServer = await listen(busyApp);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const busy = await request(`${busyServer.url}/note?${dtmQuery(gid, 'action')}`);
      expect([busy.status, busy.json]).toEqual([425, { dtm_result: 'ONGOING' }]);
      holder.exec('ROLLBACK');
      const retried = await request(`${busyServer.url}/note?${dtmQuery(gid, 'action')}`);
      expect(retried.json).toMatchObject({ outcome: 'applied' });
      expect(notes(gid)).toEqual(['x']);
    } finally {
      if (holder.inTransaction) holder.exec('ROLLBACK');
      await busyServer.close();
      holder.close();
      busyDb.close();
    }
  });

  it("answers 425 when the business code's own SQL hits a retryable conflict, leaving nothing behind", async () => {
    const gid = gidOf();
    sideHolder.exec('BEGIN IMMEDIATE');
    try {
      const answer = await post('/side', dtmQuery(gid, 'action'));
      expect([answer.status, answer.json]).toEqual([425, { dtm_result: 'ONGOING' }]);
    } finally {
      sideHolder.exec('ROLLBACK');
    }
    expect(notes(gid)).toEqual([]);
    expect(barrierRows(gid)).toBe(0);
    const retried = await post('/side', dtmQuery(gid, 'action'));
    expect(retried.json).toMatchObject({ outcome: 'applied' });
    expect(notes(gid)).toEqual(['before side effect']);
  });

  it('answers any other error with a bare 500 JSON and hands the error to onError', async () => {
    errors.length = 0;
    const answer = await post('/broken', dtmQuery(gidOf(), 'action'));
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual({ error: 'internal error' });
    expect(answer.text).not.toMatch(/no_such_table|secret_column|SELECT|at /);
    expect(errors).toHaveLength(1);
    expect(String((errors[0] as Error).message)).toContain('no_such_table');
  });

  it('answers 500 for a value JSON cannot carry; the work stays committed and the retry is a duplicate', async () => {
    const gid = gidOf();
    expect((await post('/bigint', dtmQuery(gid, 'action'))).status).toBe(500);
    expect(notes(gid)).toEqual(['bigint']);
    expect((await post('/bigint', dtmQuery(gid, 'action'))).json).toEqual({ dtm_result: 'SUCCESS', outcome: 'duplicate' });
    expect(await awaitWarnings(/answered 500/, 1)).toEqual([expect.stringMatching(/^TxbarrierWarning: .*serialize a BigInt/)]);
  });

  it('survives a body that is not JSON, one over the limit, and one the handler cannot read', async () => {
    const gid = gidOf();
    const malformed = await request(`${server.url}/mw/note?${dtmQuery(gid, 'action')}`, {
      headers: { 'content-type': 'application/json' },
      body: '{"text": "unterminated',
    });
    expect(malformed.status).toBe(400);
    const oversized = await post('/mw/note', dtmQuery(gid, 'action'), { text: 'x'.repeat(4096) });
    expect(oversized.status).toBe(413);
    // No JSON body at all: reading req.body.text throws inside the handler, which becomes a 500.
    const unreadable = await request(`${server.url}/mw/note?${dtmQuery(gid, 'action')}`, {
      headers: { 'content-type': 'text/plain' },
      body: 'plain words',
    });
    expect([unreadable.status, unreadable.json]).toEqual([500, { error: 'internal error' }]);
    expect(await awaitWarnings(/answered 500/, 1)).toEqual([expect.stringMatching(/^TxbarrierWarning: .*TypeError/)]);
    expect(barrierRows(gid)).toBe(0);
    // Still serving, and the retry with a good body applies.
    const good = await post('/mw/note', dtmQuery(gid, 'action'), { text: 'ok' });
    expect(good.json).toMatchObject({ outcome: 'applied' });
    expect(notes(gid)).toEqual(['action:ok']);
  });

  it('reads the query string itself, whatever query parser the app configured', async () => {
    for (const parser of [false, 'extended', 'simple'] as const) {
      const gid = gidOf();
      const app = express();
      app.set('query parser', parser);
      app.use('/mounted', barrierMiddleware());
      app.post(
        '/mounted/note',
        barrierRoute(store(), (tx, req) => {
          tx.prepare('INSERT INTO express_ledger (gid, note) VALUES (?, ?)').run(req.barrier.gid, String(parser));
        }),
      );
      const other = await listen(app);
      try {
        const applied = await request(`${other.url}/mounted/note?${dtmQuery(gid, 'action')}`);
        expect(applied.json, String(parser)).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied' });
        // qs would make this gid an object; read as the client sent it, there is no `gid` at all.
        const nested = await request(`${other.url}/mounted/note?gid[a]=1&trans_type=saga&branch_id=01&op=action`);
        expect(nested.json?.problems, String(parser)).toEqual([{ field: 'gid', problem: 'is missing' }]);
      } finally {
        await other.close();
      }
      expect(notes(gid)).toEqual([String(parser)]);
    }
  });

  it('takes the barrier from a custom extractor', async () => {
    const gid = gidOf();
    const answer = await post('/custom', '', undefined, { 'x-saga-step': `${gid}/07/compensate` });
    expect(answer.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'null-compensation' });
    const bad = await post('/custom', '', undefined, { 'x-saga-step': `${gid}` });
    expect(bad.status).toBe(400);
    expect((bad.json?.problems as { field: string }[]).map((p) => p.field)).toEqual(['branch_id', 'op']);
  });

  describe('query-prepared check-back', () => {
    const check = (query: string, headers: Record<string, string> = {}) =>
      request(`${server.url}/query-prepared?${query}`, { method: 'GET', headers });

    it('answers 200 for a committed message, with DTM full query or a bare gid', async () => {
      const gid = gidOf();
      await Barrier.forMessage(gid).call(store(), (tx) => tx.prepare('INSERT INTO express_ledger (gid, note) VALUES (?, ?)').run(gid, 'msg'));
      const full = await check(dtmQuery(gid, 'msg', 'msg', '00'));
      expect([full.status, full.json]).toEqual([200, { dtm_result: 'SUCCESS', state: 'committed' }]);
      const bare = await check(`gid=${gid}`);
      expect(bare.json).toEqual({ dtm_result: 'SUCCESS', state: 'committed' });
    });

    it('answers 409 for a message that never ran, and the late local transaction is then refused', async () => {
      const gid = gidOf();
      const answer = await check('', { 'dtm-gid': gid });
      expect(answer.status).toBe(409);
      expect(answer.json).toMatchObject({ dtm_result: 'FAILURE', state: 'rolledback' });
      await expect(Barrier.forMessage(gid).call(store(), () => 'late')).rejects.toBeInstanceOf(BarrierDuplicateMessage);
      expect(notes(gid)).toEqual([]);
    });

    it('answers 425 while the database cannot tell, and 400 without a gid or for another transaction type', async () => {
      const gid = gidOf();
      const busyDb = new Database(file, { timeout: 0 });
      const holder = new Database(file);
      const busyApp = express();
      busyApp.get('/qp', queryPreparedRoute(sqliteStore(busyDb)));
      const busyServer = await listen(busyApp);
      try {
        holder.exec('BEGIN IMMEDIATE');
        const busy = await request(`${busyServer.url}/qp?gid=${gid}`, { method: 'GET' });
        expect([busy.status, busy.json]).toEqual([425, { dtm_result: 'ONGOING' }]);
      } finally {
        holder.exec('ROLLBACK');
        await busyServer.close();
        holder.close();
        busyDb.close();
      }
      expect((await check('')).status).toBe(400);
      const wrongType = await check(dtmQuery(gid, 'action'));
      expect(wrongType.status).toBe(400);
      expect(wrongType.text).not.toMatch(/FAILURE|ONGOING/);
    });
  });
});
