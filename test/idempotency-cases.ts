/**
 * The draft's cases over real HTTP, the same for every front and engine: a front's test file
 * builds its app from `routeSpecs` and calls `draftCases`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IdempotencyOptions, type IdempotentResponse, pruneIdempotencyKeys } from '../src/idempotency/guard.js';
import { type Deferred, deferred } from './server-harness.js';
import { ENGINES, type EngineHarness, newKey, openEngine, post } from './idempotency-harness.js';

/** One route: its path, its options (the front adds `scope` from the `x-client` header unless `global`), its handler. */
export interface RouteSpec {
  path: string;
  options: Omit<IdempotencyOptions<unknown>, 'scope'> & { global?: boolean };
  handler: (tx: any, body: any) => Promise<IdempotentResponse>;
}

/** A running app and how to stop it. */
export interface Started {
  url: string;
  close(): Promise<void>;
}

export type StartApp = (harness: EngineHarness, specs: RouteSpec[]) => Promise<Started>;

/** Requests to /held wait here, by note, until the test releases them. */
const held = new Map<string, { entered: Deferred<void>; release: Deferred<void> }>();

/** Holds the next /held request with `note` inside its transaction. */
export function hold(note: string) {
  const gate = { entered: deferred<void>(), release: deferred<void>() };
  held.set(note, gate);
  return { entered: gate.entered.promise, release: () => gate.release.resolve() };
}

/** How often each route's handler ran, by note: runs that rolled back count too. */
export const runs = new Map<string, number>();
const ran = (note: string) => runs.set(note, (runs.get(note) ?? 0) + 1);

export function routeSpecs(h: EngineHarness): RouteSpec[] {
  const paid = async (tx: unknown, body: { note: string; amount: number }) => {
    ran(body.note);
    await h.record(tx, body.note);
    return { status: 201, body: { paid: body.amount, note: body.note }, headers: { location: `/payments/${body.note}` } };
  };
  const specs: RouteSpec[] = [
    { path: '/payments', options: {}, handler: paid },
    {
      path: '/held',
      options: {},
      handler: async (tx, body) => {
        const gate = held.get(body.note);
        const answer = await paid(tx, body);
        gate?.entered.resolve();
        await gate?.release.promise;
        return answer;
      },
    },
    {
      path: '/declined',
      options: {},
      handler: async (tx, body) => {
        ran(body.note);
        await h.record(tx, body.note);
        return { status: 402, body: { error: 'card declined' } };
      },
    },
    {
      path: '/throws',
      options: {},
      handler: async (tx, body) => {
        ran(body.note);
        await h.record(tx, body.note);
        throw new Error('the card network is down');
      },
    },
    {
      path: '/unavailable',
      options: {},
      handler: async (tx, body) => {
        ran(body.note);
        await h.record(tx, body.note);
        return { status: 503, body: { error: 'try later' } };
      },
    },
    {
      path: '/big',
      options: { maxResponseBytes: 1000 },
      handler: async (tx, body) => {
        await h.record(tx, body.note);
        return { status: 200, body: 'x'.repeat(2000) };
      },
    },
    {
      path: '/slow',
      options: {},
      handler: async (tx, body) => {
        const answer = await paid(tx, body);
        await new Promise((resolve) => setTimeout(resolve, 50));
        return answer;
      },
    },
    { path: '/brief', options: { lifetime: 300 }, handler: paid },
    { path: '/optional', options: { required: false }, handler: paid },
    { path: '/global', options: { global: true }, handler: paid },
  ];
  return specs.map((spec) => ({ ...spec, options: { table: h.table, ...spec.options } }));
}

export function draftCases(front: string, start: StartApp): void {
  describe.each(ENGINES)(`${front}: the draft's cases on %s`, (engine) => {
    let h: EngineHarness;
    let app: Started;
    const send = (path: string, body: unknown, headers: Record<string, string> = {}) => post(`${app.url}${path}`, body, headers);

    beforeAll(async () => {
      h = await openEngine(engine);
      app = await start(h, routeSpecs(h));
    });
    afterAll(async () => {
      await app?.close();
      await h?.close();
    });

    it('runs the first request, then replays it byte for byte, marked, running nothing', async () => {
      const { header } = newKey();
      const note = `first-${header}`;
      const first = await send('/payments', { note, amount: 10 }, { 'idempotency-key': header });
      expect(first.status).toBe(201);
      expect(first.json).toEqual({ paid: 10, note });
      expect(first.headers.get('location')).toBe(`/payments/${note}`);
      expect(first.headers.get('idempotent-replayed')).toBeNull();

      const again = await send('/payments', { note, amount: 10 }, { 'idempotency-key': header });
      expect(again.status).toBe(201);
      expect(again.text).toBe(first.text);
      expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(again.headers.get('location')).toBe(`/payments/${note}`);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await h.ledger(note)).toBe(1);
      expect(runs.get(note)).toBe(1);
    });

    it('answers 422 for the same key with another body or path, and runs nothing', async () => {
      const { header } = newKey();
      const note = `changed-${header}`;
      expect((await send('/payments', { note, amount: 10 }, { 'idempotency-key': header })).status).toBe(201);
      for (const [path, body] of [
        ['/payments', { note, amount: 11 }],
        ['/payments', `{"note":${JSON.stringify(note)}, "amount":10}`],
        ['/declined', { note, amount: 10 }],
      ] as const) {
        const changed = await send(path, body, { 'idempotency-key': header });
        expect(changed.status).toBe(422);
        expect(changed.headers.get('content-type')).toBe('application/problem+json');
        expect(changed.json).toMatchObject({ type: 'about:blank', title: 'Unprocessable Content', status: 422, code: 'idempotency-key-reused' });
      }
      expect(await h.ledger(note)).toBe(1);
    });

    it('answers 400 for a missing or bad key, and runs nothing', async () => {
      const note = `bad-key-${newKey().key}`;
      const missing = await send('/payments', { note, amount: 1 });
      expect(missing.status).toBe(400);
      expect(missing.headers.get('content-type')).toBe('application/problem+json');
      expect(missing.json).toMatchObject({ status: 400, code: 'idempotency-key-missing' });
      for (const bad of ['unquoted-key', '""', `"${'k'.repeat(256)}"`, '"a", "b"', '"tab\there"', '"bad\\escape"', '"open']) {
        const answer = await send('/payments', { note, amount: 1 }, { 'idempotency-key': bad });
        expect([bad, answer.status, answer.json?.code]).toEqual([bad, 400, 'idempotency-key-invalid']);
      }
      expect(await h.ledger(note)).toBe(0);
      // The longest allowed key and an escaped quote are fine.
      expect((await send('/payments', { note, amount: 1 }, { 'idempotency-key': `"${'k'.repeat(200)}${newKey().key.slice(0, 55)}"` })).status).toBe(201);
      expect((await send('/payments', { note, amount: 1 }, { 'idempotency-key': `"quote\\"d-${newKey().key}"` })).status).toBe(201);
    });

    it('answers 409 at once while the first request is in flight, then replays it', async () => {
      const { header } = newKey();
      const note = `held-${header}`;
      const gate = hold(note);
      const first = send('/held', { note, amount: 5 }, { 'idempotency-key': header });
      await gate.entered;
      const started = Date.now();
      const concurrent = await send('/held', { note, amount: 5 }, { 'idempotency-key': header });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(concurrent.status).toBe(409);
      expect(concurrent.headers.get('retry-after')).toBe('1');
      expect(concurrent.json).toMatchObject({ title: 'Conflict', status: 409, code: 'idempotency-key-in-flight' });
      gate.release();
      expect((await first).status).toBe(201);
      const replay = await send('/held', { note, amount: 5 }, { 'idempotency-key': header });
      expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
      expect(await h.ledger(note)).toBe(1);
    });

    it('stores and replays a 4xx the handler returns; a throw or a 5xx rolls back and stores nothing', async () => {
      const declined = newKey();
      const note = `declined-${declined.key}`;
      const once = await send('/declined', { note }, { 'idempotency-key': declined.header });
      const twice = await send('/declined', { note }, { 'idempotency-key': declined.header });
      expect([once.status, twice.status, twice.headers.get('idempotent-replayed'), twice.text]).toEqual([402, 402, 'true', once.text]);
      expect([runs.get(note), await h.ledger(note)]).toEqual([1, 1]);

      for (const path of ['/throws', '/unavailable']) {
        const { key, header } = newKey();
        const failing = `${path}-${key}`;
        const first = await send(path, { note: failing }, { 'idempotency-key': header });
        const retry = await send(path, { note: failing }, { 'idempotency-key': header });
        expect([first.status >= 500, retry.status >= 500, retry.headers.get('idempotent-replayed')]).toEqual([true, true, null]);
        expect([runs.get(failing), await h.ledger(failing), await h.keyRows(key)]).toEqual([2, 0, 0]);
      }
    });

    it('refuses to store a response over maxResponseBytes: the work rolls back, no key is left', async () => {
      const { key, header } = newKey();
      const note = `big-${key}`;
      const answer = await send('/big', { note }, { 'idempotency-key': header });
      expect(answer.status).toBe(500);
      expect([await h.ledger(note), await h.keyRows(key)]).toEqual([0, 0]);
    });

    it('forgets a key after its lifetime: the repeat runs afresh, and prune deletes expired keys', async () => {
      const { key, header } = newKey();
      const note = `brief-${key}`;
      expect((await send('/brief', { note, amount: 1 }, { 'idempotency-key': header })).status).toBe(201);
      expect((await send('/brief', { note, amount: 1 }, { 'idempotency-key': header })).headers.get('idempotent-replayed')).toBe('true');
      await new Promise((resolve) => setTimeout(resolve, 350));
      const fresh = await send('/brief', { note, amount: 2 }, { 'idempotency-key': header });
      expect([fresh.status, fresh.headers.get('idempotent-replayed'), fresh.json?.paid]).toEqual([201, null, 2]);
      expect(await h.ledger(note)).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(await h.keyRows(key)).toBe(1);
      expect(await pruneIdempotencyKeys(h.store, { table: h.table })).toBeGreaterThanOrEqual(1);
      expect(await h.keyRows(key)).toBe(0);
    });

    it('scopes keys per client: two clients with one key value never see each other’s response', async () => {
      const { header } = newKey();
      const alice = await send('/payments', { note: `alice-${header}`, amount: 1 }, { 'idempotency-key': header, 'x-client': 'alice' });
      const bob = await send('/payments', { note: `bob-${header}`, amount: 2 }, { 'idempotency-key': header, 'x-client': 'bob' });
      expect([alice.status, bob.status, bob.headers.get('idempotent-replayed')]).toEqual([201, 201, null]);
      expect(bob.json).toEqual({ paid: 2, note: `bob-${header}` });
      const aliceAgain = await send('/payments', { note: `alice-${header}`, amount: 1 }, { 'idempotency-key': header, 'x-client': 'alice' });
      expect([aliceAgain.text, aliceAgain.headers.get('idempotent-replayed')]).toEqual([alice.text, 'true']);
      // Bob repeating Alice's exact request runs his own, and learns nothing of hers.
      const bobAsAlice = await send('/payments', { note: `alice-${header}`, amount: 1 }, { 'idempotency-key': header, 'x-client': 'bob' });
      expect(bobAsAlice.status).toBe(422);
      expect(bobAsAlice.text).not.toContain('alice');
    });

    it('tells keys and scopes apart byte for byte: case and trailing spaces make another key', async () => {
      const { key } = newKey();
      const note = `exact-${key}`;
      for (const variant of [`${key}-a`, `${key}-A`, `${key}-a `]) {
        const answer = await send('/payments', { note, amount: 1 }, { 'idempotency-key': `"${variant}"` });
        expect([variant, answer.status, answer.headers.get('idempotent-replayed')]).toEqual([variant, 201, null]);
      }
      for (const client of ['carol', 'Carol']) {
        const answer = await send('/payments', { note, amount: 1 }, { 'idempotency-key': `"${key}"`, 'x-client': client });
        expect([client, answer.status, answer.headers.get('idempotent-replayed')]).toEqual([client, 201, null]);
      }
      expect(await h.ledger(note)).toBe(5);
    });

    it('runs an unkeyed request on a route that does not require a key, and stores nothing', async () => {
      const note = `optional-${newKey().key}`;
      expect((await send('/optional', { note, amount: 1 })).status).toBe(201);
      expect((await send('/optional', { note, amount: 1 })).status).toBe(201);
      expect(await h.ledger(note)).toBe(2);
    });

    it('shares one namespace across clients only where the route says global', async () => {
      const { header } = newKey();
      const note = `global-${header}`;
      await send('/global', { note, amount: 1 }, { 'idempotency-key': header, 'x-client': 'alice' });
      const other = await send('/global', { note, amount: 1 }, { 'idempotency-key': header, 'x-client': 'bob' });
      expect(other.headers.get('idempotent-replayed')).toBe('true');
    });
  });
}
