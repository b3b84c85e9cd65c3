/**
 * The draft's cases over real HTTP, the same for every front and engine: a front's test file
 * builds its app from `routeSpecs` and calls `draftCases`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type IdempotencyEvent,
  type IdempotencyOptions,
  IdempotencyResponseError,
  IdempotencyScopeError,
  type IdempotentResponse,
  pruneIdempotencyKeys,
} from '../../src/idempotency/guard.js';
import { type Deferred, deferred } from '../support/server-harness.js';
import { type Answer, ENGINES, type EngineHarness, newKey, openEngine, post, postEarly } from './harness.js';

/** One route: its path, its options (the front adds `scope` from the `x-client` header unless `global`), its handler. */
export interface RouteSpec {
  path: string;
  /** `maxBodyBytes` applies on the fronts that read the body themselves (Koa, Hono). */
  options: Omit<IdempotencyOptions<unknown>, 'scope'> & { global?: boolean; maxBodyBytes?: number };
  handler: (tx: any, body: any) => Promise<IdempotentResponse>;
}

/** A running app and how to stop it. */
export interface Started {
  url: string;
  close(): Promise<void>;
}

export type StartApp = (harness: EngineHarness, specs: RouteSpec[]) => Promise<Started>;

/** What sets a front apart in these cases. */
export interface FrontTraits {
  /** The route reads the body itself (Koa, Hono): the key is checked first and `maxBodyBytes` bounds it. Else a parser the app mounts reads it first. */
  readsBody?: boolean;
}

/**
 * The client's scope, from the `x-client` header (standing in for authentication), with `\uXXXX`
 * escapes decoded, so a test can name a scope that no header could carry.
 */
export function clientOf(header: unknown): string {
  return String(header).replace(/\\u([0-9a-fA-F]{4})/g, (_match, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Every route's outcomes, in order: the errors the fronts hand to their frameworks are read here. */
export const events: IdempotencyEvent[] = [];
const eventsSince = (seen: number, target: string) => events.slice(seen).filter((event) => event.target === target);

/** What `/rejects` throws, by the body's `kind`: none of them an Error. */
const REJECTIONS: Record<string, unknown> = { undefined, null: null, zero: 0, route: 'route', router: 'router', status: { status: 404, statusCode: 404 } };

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
    {
      path: '/bad-header',
      options: {},
      handler: async (tx, body) => {
        ran(body.note);
        await h.record(tx, body.note);
        // Only the first run answers the bad headers, so a retry shows whether the key was left free.
        return { status: 201, body: { note: body.note }, headers: runs.get(body.note) === 1 ? body.headers : {} };
      },
    },
    {
      path: '/rejects',
      options: {},
      handler: async (tx, body) => {
        ran(body.note);
        await h.record(tx, body.note);
        throw REJECTIONS[body.kind];
      },
    },
    { path: '/bare', options: { acceptBareKeys: true }, handler: paid },
    { path: '/small', options: { maxBodyBytes: 128 }, handler: paid },
    { path: '/brief', options: { lifetime: 300 }, handler: paid },
    { path: '/optional', options: { required: false }, handler: paid },
    { path: '/global', options: { global: true }, handler: paid },
  ];
  return specs.map((spec) => ({ ...spec, options: { table: h.table, onOutcome: (event) => events.push(event), ...spec.options } }));
}

/** A JSON body of exactly `size` bytes. */
function bodyOf(note: string, size: number): string {
  const head = JSON.stringify({ note, amount: 1, pad: '' });
  return `${head.slice(0, -2)}${'x'.repeat(size - head.length)}"}`;
}

export function draftCases(front: string, start: StartApp, traits: FrontTraits = {}): void {
  describe.each(ENGINES)(`${front}: the draft's cases on %s`, (engine) => {
    let h: EngineHarness;
    let app: Started;
    const send = (path: string, body: unknown, headers: Record<string, string> = {}) => post(`${app.url}${path}`, body, headers);

    beforeAll(async () => {
      // A short lock wait, so a busy database answers within the test (MySQL rounds it up to 1 s).
      h = await openEngine(engine, { lockTimeout: 300 });
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
    it('refuses a response that cannot be sent before its work commits: 500, nothing stored, a retry runs afresh', async () => {
      const unsendable: Record<string, string>[] = [
        { 'x-note': 'line\r\nbreak' },
        { 'x-note': 'line\nfeed' },
        { 'x-note': 'euro €' },
        { 'bad name': 'v' },
        { 'x-colon:': 'v' },
        { '': 'v' },
        { 'content-length': '2' },
        { 'Transfer-Encoding': 'chunked' },
        { connection: 'close' },
      ];
      for (const headers of unsendable) {
        const { key, header } = newKey();
        const note = `bad-header-${key}`;
        const label = JSON.stringify(headers);
        const seen = events.length;
        const first = await send('/bad-header', { note, headers }, { 'idempotency-key': header });
        expect([label, first.status]).toEqual([label, 500]);
        const [failed] = eventsSince(seen, '/bad-header');
        expect([label, failed?.outcome, failed?.error instanceof IdempotencyResponseError]).toEqual([label, 'error', true]);
        expect([label, await h.ledger(note), await h.keyRows(key)]).toEqual([label, 0, 0]);
        const retry = await send('/bad-header', { note, headers }, { 'idempotency-key': header });
        expect([label, retry.status, retry.headers.get('idempotent-replayed')]).toEqual([label, 201, null]);
        const replay = await send('/bad-header', { note, headers }, { 'idempotency-key': header });
        expect([label, replay.status, replay.headers.get('idempotent-replayed'), replay.text]).toEqual([label, 201, 'true', retry.text]);
        expect([label, runs.get(note), await h.ledger(note), await h.keyRows(key)]).toEqual([label, 2, 1, 1]);
      }
    });

    it('answers 503 with Retry-After and its own problem while the database is busy; nothing is stored', async () => {
      const { key, header } = newKey();
      const note = `busy-${key}`;
      const seen = events.length;
      const release = await h.blockWrites();
      let busy: Answer;
      try {
        busy = await send('/payments', { note, amount: 1 }, { 'idempotency-key': header });
      } finally {
        await release();
      }
      expect([busy.status, busy.headers.get('retry-after'), busy.headers.get('content-type')]).toEqual([503, '1', 'application/problem+json']);
      expect(busy.json).toMatchObject({ type: 'about:blank', title: 'Service Unavailable', status: 503, code: 'idempotency-busy' });
      const [event] = eventsSince(seen, '/payments');
      expect([event?.outcome, event?.status, event?.error === undefined]).toEqual(['busy', 503, false]);
      expect([await h.ledger(note), await h.keyRows(key)]).toEqual([0, 0]);
      const after = await send('/payments', { note, amount: 1 }, { 'idempotency-key': header });
      expect([after.status, after.headers.get('idempotent-replayed'), await h.ledger(note), await h.keyRows(key)]).toEqual([201, null, 1, 1]);
    });

    it('answers 500 when the handler rejects with something that is not an Error, and stores nothing', async () => {
      for (const kind of ['undefined', 'null', 'zero', 'route', 'router', 'status']) {
        const { key, header } = newKey();
        const note = `rejects-${kind}-${key}`;
        const seen = events.length;
        const answer = await send('/rejects', { note, kind }, { 'idempotency-key': header });
        expect([kind, answer.status]).toEqual([kind, 500]);
        const [event] = eventsSince(seen, '/rejects');
        expect([kind, event?.outcome, event?.error instanceof Error]).toEqual([kind, 'error', true]);
        expect([kind, runs.get(note), await h.ledger(note), await h.keyRows(key)]).toEqual([kind, 1, 0, 0]);
      }
    });

    it('refuses a scope that is not well-formed text with a typed error: lone surrogates never share a key', async () => {
      const { key, header } = newKey();
      const note = `lone-${key}`;
      for (const client of ['user-\\uD800', 'user-\\uDC00', 'user-\\uDFFF-x', 'user-\\u0000']) {
        const seen = events.length;
        const answer = await send('/payments', { note, amount: 1 }, { 'idempotency-key': header, 'x-client': client });
        expect([client, answer.status]).toEqual([client, 500]);
        const [event] = eventsSince(seen, '/payments');
        expect([client, event?.error instanceof IdempotencyScopeError]).toEqual([client, true]);
      }
      expect([runs.get(note), await h.ledger(note), await h.keyRows(key)]).toEqual([undefined, 0, 0]);
      // A surrogate pair is well-formed: a scope like any other.
      const paired = await send('/payments', { note, amount: 1 }, { 'idempotency-key': header, 'x-client': 'user-\\uD83D\\uDE00' });
      expect([paired.status, await h.keyRows(key)]).toEqual([201, 1]);
    });

    it('accepts a bare token key where the route says acceptBareKeys: abc and "abc" are one key', async () => {
      const { key } = newKey();
      const note = `bare-${key}`;
      const bare = await send('/bare', { note, amount: 1 }, { 'idempotency-key': key });
      expect([bare.status, bare.headers.get('idempotent-replayed')]).toEqual([201, null]);
      for (const same of [`"${key}"`, `  ${key} `]) {
        const replay = await send('/bare', { note, amount: 1 }, { 'idempotency-key': same });
        expect([same, replay.status, replay.headers.get('idempotent-replayed'), replay.text]).toEqual([same, 201, 'true', bare.text]);
      }
      const quotedFirst = newKey();
      expect((await send('/bare', { note, amount: 1 }, { 'idempotency-key': quotedFirst.header })).status).toBe(201);
      expect((await send('/bare', { note, amount: 1 }, { 'idempotency-key': quotedFirst.key })).headers.get('idempotent-replayed')).toBe('true');
      // Every character of an RFC 8941 token, and the longest key allowed.
      for (const token of [`*tok:en/!#$%&'+-.^_\`|~${key}`, `k${key}`.padEnd(255, 'k')]) {
        const answer = await send('/bare', { note, amount: 1 }, { 'idempotency-key': token });
        expect([token, answer.status, answer.headers.get('idempotent-replayed')]).toEqual([token, 201, null]);
      }
      for (const bad of ['a b', 'a,b', `${key}, ${key}`, 'a;b', '(ab)', 'a"b', '"ab', 'ab"', '{ab}', 'a\\b', 'a=b', '@ab', 'k'.repeat(256)]) {
        const answer = await send('/bare', { note, amount: 1 }, { 'idempotency-key': bad });
        expect([bad, answer.status, answer.json?.code]).toEqual([bad, 400, 'idempotency-key-invalid']);
      }
      const strict = await send('/payments', { note, amount: 1 }, { 'idempotency-key': key });
      expect([strict.status, strict.json?.code]).toEqual([400, 'idempotency-key-invalid']);
      expect(await h.ledger(note)).toBe(4);
    });

    it('answers 413 for a body over the limit and runs nothing', async () => {
      const { key, header } = newKey();
      const note = `huge-${key}`;
      const declared = await postEarly(`${app.url}/payments`, { 'idempotency-key': header }, bodyOf(note, 2 * 1_048_576));
      expect(declared.status).toBe(413);
      if (traits.readsBody) {
        expect(declared.headers.get('content-type')).toBe('application/problem+json');
        expect(declared.json).toMatchObject({ type: 'about:blank', title: 'Content Too Large', status: 413, code: 'idempotency-body-too-large' });
      }
      // Sent without a length, ending only when answered (or after 64 MiB).
      const endless = await postEarly(`${app.url}/payments`, { 'idempotency-key': newKey().header }, 'endless', traits.readsBody ? undefined : 8 * 1_048_576);
      expect(endless.status).toBe(413);
      if (traits.readsBody) expect([endless.complete, endless.written < 16 * 1_048_576]).toEqual([false, true]);
      expect([await h.ledger(note), await h.keyRows(key)]).toEqual([0, 0]);
    });

    // Only where the route reads the body itself (Koa, Hono): Express's and Fastify's own parsers
    // read and bound it before the route runs, so these cases are not defined for them.
    if (traits.readsBody) {
      it('checks the key before reading the body: a missing or bad key is refused mid-stream', async () => {
        const missing = await postEarly(`${app.url}/payments`, {}, 'endless');
        expect([missing.status, missing.json?.code, missing.complete]).toEqual([400, 'idempotency-key-missing', false]);
        const bad = await postEarly(`${app.url}/payments`, { 'idempotency-key': 'unquoted' }, 'endless');
        expect([bad.status, bad.json?.code, bad.complete]).toEqual([400, 'idempotency-key-invalid', false]);
      });

      it('bounds the body at maxBodyBytes: 1 MiB by default, else the route’s own', async () => {
        const note = `bounded-${newKey().key}`;
        for (const [path, limit] of [['/payments', 1_048_576], ['/small', 128]] as const) {
          const fits = await send(path, bodyOf(note, limit), { 'idempotency-key': newKey().header });
          const over = await postEarly(`${app.url}${path}`, { 'idempotency-key': newKey().header }, bodyOf(note, limit + 1));
          expect([path, fits.status, over.status, over.json?.code]).toEqual([path, 201, 413, 'idempotency-body-too-large']);
          expect(over.json?.detail).toContain(String(limit));
        }
        expect(await h.ledger(note)).toBe(2);
      });
    }
  });
}
