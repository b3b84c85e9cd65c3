/**
 * One conformance suite for every HTTP front (Express, Fastify, Hono, Koa), over real HTTP, on
 * every engine: each row of the protocol table (docs/protocol.md), 400 with nothing written, 500 with nothing
 * leaked and reported, the check-back and its race with the local transaction. A front's test file
 * supplies `start`: its app serving the routes below, as a user of that framework would write them.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Barrier, BarrierDuplicateMessage, BarrierFailure, BarrierOngoing, type BarrierStore } from '../../src/index.js';
import { dtmQuery, type Listening, request } from './express-http.js';
import { awaitWarnings } from '../support/warnings.js';

export { listenOn } from './express-http.js';
import { type ConflictEngine, conflictEngines } from '../support/conflict-engines.js';
import { holdOpen } from '../support/server-harness.js';

/** What a branch route does inside the barrier's transaction, given the barrier and the parsed JSON body. */
export type BranchWork<Tx> = (tx: Tx, barrier: Barrier, body: any) => unknown;

export interface BranchRoute<Tx> {
  run: BranchWork<Tx>;
  /** Passed as the route's `onError` option when present. */
  onError?: (error: unknown) => void;
}

/**
 * The app a front must serve, with a JSON body parser limited to 1 kB (the framework's own answer
 * for a malformed body, 413 for an oversized one):
 * - `POST <path>` for each of `branches`: `barrierRoute(store, …)` running `run(tx, barrier, body)`;
 * - the middleware mounted on `/mw`, `POST /mw/note` a `barrierRoute` running `middlewareNote`
 *   behind it, and `GET /mw/whoami` a plain handler of the framework answering `{ gid, op }` of
 *   the middleware's barrier;
 * - `GET /query-prepared`: `queryPreparedRoute(store)`, and `GET /mw/query-prepared` behind the middleware.
 */
export interface FrontRoutes<Tx> {
  store: BarrierStore<Tx>;
  branches: Record<string, BranchRoute<Tx>>;
  middlewareNote: BranchWork<Tx>;
}

export interface FrontServer extends Listening {
  /** Errors the framework's own reporting channel received (Koa's `error` event), where a front reports there. */
  reported?: unknown[];
}

export type StartFront = <Tx>(routes: FrontRoutes<Tx>) => Promise<FrontServer>;

const ENGINES = conflictEngines('fronts');

/** A request through node:http, for what fetch cannot send: a header line twice, latin1 bytes. */
function rawRequest(url: string, headers: Record<string, string | string[]>): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const sent = httpRequest(url, { method: 'POST', headers }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, json: JSON.parse(text) }));
    });
    sent.once('error', reject);
    sent.end();
  });
}

/** The barrier's own routes, run unchanged through every front on every engine. */
export function describeFront(front: string, start: StartFront): void {
  describe.each(ENGINES)(`${front} on %s`, (_, available, open) => {
    let h: ConflictEngine<any>;
    let server: FrontServer;
    const errors: unknown[] = [];
    const gidOf = () => `${front}-${randomUUID()}`;
    const post = (path: string, query: string, body?: unknown, headers: Record<string, string> = {}) =>
      request(`${server.url}${path}?${query}`, {
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const nothingWritten = async (gid: string) => {
      expect(await h.barrierRows(gid)).toEqual([]);
      expect(await h.notes(gid)).toEqual([]);
    };

    beforeAll(async () => {
      if (!available()) return;
      h = await open();
      const note: BranchWork<unknown> = (tx, barrier) => h.record(tx, barrier.gid, barrier.op);
      server = await start({
        store: h.store,
        branches: {
          '/note': { run: async (tx, barrier, body) => (await note(tx, barrier, body), body?.reply) },
          '/fail': {
            run: async (tx, barrier, body) => {
              await h.record(tx, barrier.gid, 'half-done');
              throw new BarrierFailure(body.message);
            },
          },
          '/ongoing': {
            run: () => {
              throw new BarrierOngoing('inventory not ready');
            },
          },
          '/conflict': {
            run: async (tx, barrier) => {
              await h.record(tx, barrier.gid, 'before the conflict');
              await h.conflict(tx);
            },
          },
          '/broken': {
            run: async (tx, barrier) => {
              await h.record(tx, barrier.gid, 'half-done');
              throw new Error('relation "secret_table" does not exist: SELECT secret_column FROM secret_table');
            },
            onError: (error) => errors.push(error),
          },
          '/unreported': {
            run: () => {
              throw new Error('nobody listens: SELECT secret_column');
            },
          },
          '/bigint': { run: async (tx, barrier) => (await h.record(tx, barrier.gid, 'bigint'), 1n) },
        },
        middlewareNote: async (tx, barrier, body) => {
          const text: string = body.text.trim();
          await h.record(tx, barrier.gid, `${barrier.op}:${text}`);
          return { noted: text };
        },
      });
    });

    afterAll(async () => {
      await server?.close();
      await h?.close();
    });

    describe.skipIf(!available())('protocol', () => {
      it('applied: 200 SUCCESS with the value; again: duplicate, without it; the work applied once', async () => {
        const gid = gidOf();
        const first = await post('/note', dtmQuery(gid, 'action'), { reply: { balance: 70 } });
        expect([first.status, first.json]).toEqual([200, { dtm_result: 'SUCCESS', outcome: 'applied', value: { balance: 70 } }]);
        expect(first.type).toMatch(/^application\/json/);
        const again = await post('/note', dtmQuery(gid, 'action'), { reply: { balance: 70 } });
        expect([again.status, again.json]).toEqual([200, { dtm_result: 'SUCCESS', outcome: 'duplicate' }]);
        expect(await h.notes(gid)).toEqual(['action']);
      });

      it('null compensation, then the dangling action: 200 SUCCESS for both, neither applied', async () => {
        const gid = gidOf();
        const compensation = await post('/note', dtmQuery(gid, 'compensate'));
        expect([compensation.status, compensation.json]).toEqual([200, { dtm_result: 'SUCCESS', outcome: 'null-compensation' }]);
        const late = await post('/note', dtmQuery(gid, 'action'));
        expect([late.status, late.json]).toEqual([200, { dtm_result: 'SUCCESS', outcome: 'dangling' }]);
        expect(await h.notes(gid)).toEqual([]);
      });

      it('reads the dtm-* headers when the query names no branch', async () => {
        const gid = gidOf();
        const answer = await post('/note', '', undefined, { 'dtm-gid': gid, 'dtm-trans_type': 'tcc', 'dtm-branch_id': '02', 'dtm-op': 'try' });
        expect(answer.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied' });
        expect((await h.barrierRows(gid)).map((row) => [row.branch_id, row.op])).toEqual([['02', 'try']]);
      });

      it('the middleware sets a typed barrier for every route behind it, and the route reuses it', async () => {
        const gid = gidOf();
        const seen = await request(`${server.url}/mw/whoami?${dtmQuery(gid, 'compensate')}`, { method: 'GET' });
        expect(seen.json).toEqual({ gid, op: 'compensate' });
        const applied = await post('/mw/note', dtmQuery(gid, 'action', 'saga', '03'), { text: ' hello ' });
        expect(applied.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied', value: { noted: 'hello' } });
        expect(await h.notes(gid)).toEqual(['action:hello']);
      });

      it('BarrierFailure: 409 FAILURE, rolled back, ONGOING escaped in the message', async () => {
        const gid = gidOf();
        const message = 'ONGOING audit blocks this transfer';
        const answer = await post('/fail', dtmQuery(gid, 'action'), { message });
        expect([answer.status, answer.json]).toEqual([409, { dtm_result: 'FAILURE', message }]);
        expect(answer.text).not.toContain('ONGOING');
        await nothingWritten(gid);
      });

      it('a success body never holds FAILURE or ONGOING as raw text', async () => {
        const reply = { status: 'FAILURE_EXPECTED_LATER', next: ['ONGOING'] };
        const answer = await post('/note', dtmQuery(gidOf(), 'action'), { reply });
        expect(answer.json).toEqual({ dtm_result: 'SUCCESS', outcome: 'applied', value: reply });
        expect(answer.text).not.toMatch(/FAILURE|ONGOING/);
      });

      it('BarrierOngoing: 425 ONGOING', async () => {
        const answer = await post('/ongoing', dtmQuery(gidOf(), 'action'));
        expect([answer.status, answer.json]).toEqual([425, { dtm_result: 'ONGOING' }]);
      });

      it("a retryable conflict raised by the server in the handler's own SQL: 425 ONGOING, rolled back", async () => {
        const gid = gidOf();
        const answer = await post('/conflict', dtmQuery(gid, 'action'));
        expect([answer.status, answer.json]).toEqual([425, { dtm_result: 'ONGOING' }]);
        await nothingWritten(gid);
      });
    });

    describe.skipIf(!available())('bad input: 400 naming every bad field, nothing written', () => {
      it.each(['/note', '/mw/note'])('%s', async (path) => {
        const gid = gidOf();
        const answer = await post(path, `gid=${gid}&gid=${gid}&trans_type=saga&branch_id=&op=undo`, { text: 'never' });
        expect([answer.status, answer.json]).toEqual([
          400,
          {
            error: 'invalid barrier request',
            problems: [
              { field: 'gid', problem: 'is repeated' },
              { field: 'branch_id', problem: 'is empty' },
              { field: 'op', problem: 'is not an op of saga (action, compensate)' },
            ],
          },
        ]);
        const missing = await post(path, '', { text: 'never' });
        expect(missing.status).toBe(400);
        expect((missing.json!.problems as { field: string }[]).map((p) => p.field)).toEqual(['trans_type', 'gid', 'branch_id', 'op']);
        await nothingWritten(gid);
      });

      it('invalid UTF-8 in the query: each spelling refused, never one key for two', async () => {
        const gid = gidOf();
        for (const bad of ['%FF', '%FE', '%C0%AF', '%ED%A0%80', '%zz']) {
          const answer = await post('/note', `gid=${gid}${bad}&trans_type=saga&branch_id=01&op=action`);
          expect([answer.status, (answer.json!.problems as { field: string }[])[0]!.field], bad).toEqual([400, 'gid']);
        }
        await nothingWritten(`${gid}\uFFFD`);
      });

      it('a repeated, case-doubled or non-ASCII dtm-* header', async () => {
        const gid = gidOf();
        const fields = { 'dtm-trans_type': 'saga', 'dtm-branch_id': '01', 'dtm-op': 'action' };
        const repeated = await rawRequest(`${server.url}/note`, { ...fields, 'dtm-gid': [gid, `${gid}-b`] });
        expect([repeated.status, repeated.json.problems]).toEqual([400, [{ field: 'gid', problem: 'is repeated' }]]);
        const joined = await post('/note', '', undefined, { ...fields, 'dtm-gid': `${gid}, ${gid}-b` });
        expect([joined.status, joined.json!.problems]).toEqual([400, [{ field: 'gid', problem: 'is repeated' }]]);
        const latin1 = await rawRequest(`${server.url}/note`, { ...fields, 'dtm-gid': Buffer.from(`${gid}é`).toString('latin1') });
        expect(latin1.status).toBe(400);
        expect(latin1.json.problems[0].problem).toMatch(/ASCII.*query/);
        await nothingWritten(gid);
        await nothingWritten(`${gid}, ${gid}-b`);
      });
    });

    describe.skipIf(!available())('errors: 500 with nothing leaked, always reported', () => {
      it('hands the error to onError and rolls back', async () => {
        errors.length = 0;
        const gid = gidOf();
        const answer = await post('/broken', dtmQuery(gid, 'action'));
        expect([answer.status, answer.json]).toEqual([500, { error: 'internal error' }]);
        expect(answer.text).not.toMatch(/secret|SELECT|at /);
        expect(errors.map((e) => (e as Error).message)).toEqual([expect.stringContaining('secret_table')]);
        await nothingWritten(gid);
      });

      it("without onError or a logger, reports it: a process warning, or the framework's own channel", async () => {
        server.reported?.splice(0);
        const warnings: Error[] = [];
        const listen = (warning: Error) => warnings.push(warning);
        process.on('warning', listen);
        try {
          const answer = await post('/unreported', dtmQuery(gidOf(), 'action'));
          expect([answer.status, answer.json]).toEqual([500, { error: 'internal error' }]);
          await new Promise((resolve) => setImmediate(resolve));
        } finally {
          process.off('warning', listen);
        }
        const reports = [...warnings.map((w) => `${w.name}: ${w.message}`), ...(server.reported ?? []).map(String)];
        expect(reports).toEqual([expect.stringMatching(server.reported ? /^Error: nobody listens/ : /^TxbarrierWarning: .*nobody listens/)]);
      });

      it('a value JSON cannot carry: 500, the work stays committed, the retry is a duplicate', async () => {
        const gid = gidOf();
        expect((await post('/bigint', dtmQuery(gid, 'action'))).status).toBe(500);
        expect(await h.notes(gid)).toEqual(['bigint']);
        expect((await post('/bigint', dtmQuery(gid, 'action'))).json).toEqual({ dtm_result: 'SUCCESS', outcome: 'duplicate' });
        // Reported once: to the front's own hook where it has one, else as a process warning.
        const reports = server.reported ? server.reported.splice(0).map(String) : await awaitWarnings(/answered 500/, 1);
        expect(reports.filter((report) => /serialize a BigInt/.test(report))).toHaveLength(1);
      });

      it("a body the framework's parser rejects gets its usual answer before any barrier work", async () => {
        const gid = gidOf();
        const malformed = await request(`${server.url}/mw/note?${dtmQuery(gid, 'action')}`, {
          headers: { 'content-type': 'application/json' },
          body: '{"text": "unterminated',
        });
        expect(malformed.status).toBe(400);
        expect(malformed.json?.problems).toBeUndefined();
        const oversized = await post('/mw/note', dtmQuery(gid, 'action'), { text: 'x'.repeat(4096) });
        expect(oversized.status).toBe(413);
        await nothingWritten(gid);
        const good = await post('/mw/note', dtmQuery(gid, 'action'), { text: 'ok' });
        expect(good.json).toMatchObject({ outcome: 'applied' });
        expect(await h.notes(gid)).toEqual(['action:ok']);
      });
    });

    describe.skipIf(!available())('the check-back', () => {
      const check = (query: string, headers: Record<string, string> = {}) =>
        request(`${server.url}/query-prepared?${query}`, { method: 'GET', headers });

      it('200 for a committed message, by DTM full query or a bare gid', async () => {
        const gid = gidOf();
        await Barrier.forMessage(gid).call(h.store, (tx) => h.record(tx, gid, 'msg'));
        const full = await check(dtmQuery(gid, 'msg', 'msg', '00'));
        expect([full.status, full.json]).toEqual([200, { dtm_result: 'SUCCESS', state: 'committed' }]);
        expect((await check(`gid=${gid}`)).json).toEqual({ dtm_result: 'SUCCESS', state: 'committed' });
      });

      it('409 for a message that never ran (dtm-gid header), and the late local transaction is refused', async () => {
        const gid = gidOf();
        const answer = await check('', { 'dtm-gid': gid });
        expect(answer.status).toBe(409);
        expect(answer.json).toMatchObject({ dtm_result: 'FAILURE', state: 'rolledback' });
        await expect(Barrier.forMessage(gid).call(h.store, () => 'late')).rejects.toBeInstanceOf(BarrierDuplicateMessage);
        expect(await h.notes(gid)).toEqual([]);
      });

      it('400 without a gid, for another transaction type, for a gid that is not UTF-8 or repeated', async () => {
        expect((await check('')).status).toBe(400);
        const wrongType = await check(dtmQuery(gidOf(), 'action'));
        expect(wrongType.status).toBe(400);
        expect(wrongType.text).not.toMatch(/FAILURE|ONGOING/);
        const gid = gidOf();
        expect((await check(`gid=${gid}%FF`)).json?.problems).toEqual([{ field: 'gid', problem: 'is not valid UTF-8' }]);
        await nothingWritten(`${gid}\uFFFD`);
        // Behind the middleware, which read a saga branch's barrier: still only a msg barrier is checked back.
        const behind = await request(`${server.url}/mw/query-prepared?${dtmQuery(gid, 'action')}`, { method: 'GET' });
        expect([behind.status, behind.json?.problems]).toEqual([400, [{ field: 'trans_type', problem: 'must be msg for a check-back' }]]);
        const message = await request(`${server.url}/mw/query-prepared?${dtmQuery(gid, 'msg', 'msg', '00')}`, { method: 'GET' });
        expect(message.json).toMatchObject({ dtm_result: 'FAILURE', state: 'rolledback' });
        // A repeated dtm-gid, which Node joins into one value: refused, never a rollback row for "a, b".
        const repeated = await check('', { 'dtm-gid': `${gid}, ${gid}-b` });
        expect([repeated.status, repeated.json?.problems]).toEqual([400, [{ field: 'gid', problem: 'is repeated' }]]);
        await nothingWritten(`${gid}, ${gid}-b`);
      });

      it.each(['commit', 'rollback'] as const)('waits for a local transaction still open, then answers what it did: %s', async (end) => {
        const gid = gidOf();
        const held = holdOpen(h.store);
        const local = Barrier.forMessage(gid).call(held.store, (tx) => h.record(tx, gid, 'msg'));
        local.catch(() => undefined);
        await held.entered;
        const asked = Date.now();
        const answer = check(`gid=${gid}`);
        await new Promise((resolve) => setTimeout(resolve, 300));
        held[end]();
        const { status, json } = await answer;
        // It answered only once the local transaction ended, and then the truth.
        expect(Date.now() - asked).toBeGreaterThanOrEqual(290);
        expect([status, json]).toEqual(end === 'commit' ? [200, { dtm_result: 'SUCCESS', state: 'committed' }] : [409, expect.objectContaining({ state: 'rolledback' })]);
        if (end === 'commit') {
          await local;
          expect(await h.notes(gid)).toEqual(['msg']);
        } else {
          await expect(local).rejects.toThrow();
          expect(await h.notes(gid)).toEqual([]);
        }
      });
    });
  });
}
