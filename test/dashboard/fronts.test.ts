/**
 * The dashboard mounted under /ops in Express (5 and 4), Fastify, Hono and Koa, over real HTTP:
 * the page, the snapshot and an action reach the one handler, `authorize` receives the
 * framework's own request, and the app's other routes still answer. The `txbarrier dashboard`
 * command, spawned as a user runs it.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expressDashboard } from '../../adapters/http/express/dashboard.js';
import { sqliteStore } from '../../adapters/stores/sqlite.js';
import { createOutbox } from '../../src/messaging/outbox/index.js';
import { openTempDb } from '../stores/sqlite-harness.js';
import { fastifyDashboard } from '../../adapters/http/fastify/dashboard.js';
import { honoDashboard } from '../../adapters/http/hono/dashboard.js';
import { koaDashboard } from '../../adapters/http/koa/dashboard.js';
import { createDashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { EXPRESS_VERSIONS, listen, type Listening } from '../fronts/express-http.js';
import { type EngineHarness, openEngine } from '../outbox/harness.js';

let db: EngineHarness;
let parked: string[];
beforeAll(async () => {
  db = await openEngine('sqlite');
  parked = [];
  for (let i = 0; i < 6; i++) parked.push(await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 't', payload: 'x' })));
  await db.query(`UPDATE "${db.outbox.table}" SET status = 'parked', last_error = 'no route' WHERE status = 'pending'`);
});
afterAll(async () => {
  await db?.close();
});

/** Options whose authorize records which native object it was given. */
function optionsFor<N>(seen: unknown[], check: (native: N) => boolean): DashboardOptions<N> {
  return {
    outbox: { table: db.outbox.table },
    idempotency: false,
    actions: { authorize: (_request, native) => (seen.push(native), check(native)) },
  };
}

type Start = (seen: unknown[]) => Promise<Listening>;

const FRONTS: [string, Start][] = [
  ...EXPRESS_VERSIONS.map(([name, express]): [string, Start] => [
    name,
    (seen) => {
      const app = express();
      app.get('/other', (_req, res) => void res.send('other'));
      app.use('/ops', expressDashboard(createDashboard(db.store, optionsFor(seen, (req) => req.get('x-user') === 'ada'))));
      return listen(app);
    },
  ]),
  [
    'fastify',
    async (seen) => {
      const app = Fastify();
      app.get('/other', async () => 'other');
      await app.register(fastifyDashboard(createDashboard(db.store, optionsFor(seen, (request) => request.headers['x-user'] === 'ada'))), { prefix: '/ops' });
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      return { url, close: () => app.close() };
    },
  ],
  [
    'hono',
    async (seen) => {
      const app = new Hono();
      app.get('/other', (c) => c.text('other'));
      const ops = honoDashboard(createDashboard(db.store, optionsFor(seen, (c) => c.req.header('x-user') === 'ada')), { path: '/ops' });
      app.all('/ops', ops);
      app.all('/ops/*', ops);
      const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
        const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
      });
      const { port } = server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((done) => server.close(() => done())) };
    },
  ],
  [
    'koa',
    (seen) => {
      const app = new Koa();
      app.use(koaDashboard(createDashboard(db.store, optionsFor(seen, (ctx) => ctx.get('x-user') === 'ada')), { path: '/ops' }));
      app.use((ctx) => void (ctx.body = ctx.path === '/other' ? 'other' : 'fallthrough'));
      return listen(app.callback());
    },
  ],
];

describe.each(FRONTS)('dashboard mounted in %s', (name, start) => {
  it('serves the page, the snapshot and an action under /ops; authorize gets the framework request', async () => {
    const seen: unknown[] = [];
    const server = await start(seen);
    try {
      const bare = await fetch(`${server.url}/ops`, { redirect: 'manual' });
      expect([bare.status, bare.headers.get('location')]).toEqual([308, '/ops/']);
      const page = await fetch(`${server.url}/ops/`);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const token = /"csrf":"([^"]+)"/.exec(await page.text())![1]!;
      const snapshot = (await (await fetch(`${server.url}/ops/api/snapshot`)).json()) as { outbox: { parked: { count: number } }; actions: boolean };
      expect(snapshot.actions).toBe(true);
      const index = FRONTS.findIndex(([front]) => front === name);
      const id = parked[index]!;
      const post = (user: string) =>
        fetch(`${server.url}/ops/api/actions/requeue?id=${id}`, { method: 'POST', headers: { 'x-txbarrier-csrf': token, 'x-user': user } });
      const refused = await post('mallory');
      expect(refused.status).toBe(403);
      const done = await post('ada');
      expect([done.status, await done.json()]).toEqual([200, { requeued: 1 }]);
      expect(seen).toHaveLength(2);
      expect(seen[0]).not.toBeInstanceOf(Request);
      expect((await db.outbox.parked()).map((m) => m.id)).not.toContain(id);
      expect(await (await fetch(`${server.url}/other`)).text()).toBe('other');
    } finally {
      await server.close();
    }
  });
});

describe('txbarrier dashboard', () => {
  const CLI = join(process.cwd(), 'bin/txbarrier.ts');
  const TSX = join(process.cwd(), 'node_modules/.bin/tsx');

  /** Starts the command and resolves once it printed its address. */
  function startCli(args: string[], env: Record<string, string> = {}) {
    const child = spawn(TSX, [CLI, 'dashboard', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const url = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk;
        const found = /on (http:\/\/\S+\/) /.exec(stdout);
        if (found) resolve(found[1]!);
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    return { child, url, exited, output: () => ({ stdout, stderr }) };
  }

  it('binds 127.0.0.1, reads the URL from the environment, is read-only by default, and acts only with the token', async () => {
    const { db: file, file: path, dir } = openTempDb();
    const store = sqliteStore(file);
    const outbox = createOutbox(store);
    await outbox.ensureSchema();
    await store.ensureSchema();
    const id = await outbox.store.transaction(({ tx }) => outbox.enqueue(tx, { topic: 't', payload: 'x' }));
    file.prepare("UPDATE txbarrier_outbox SET status = 'parked'").run();
    const env = { TXBARRIER_DATABASE_URL: `sqlite:${path}`, TXBARRIER_DASHBOARD_TOKEN: 'a-token-of-some-length' };
    const requeue = (url: string, headers: Record<string, string>) => fetch(`${url}api/actions/requeue?id=${id}`, { method: 'POST', headers });
    try {
      const readOnly = startCli(['--port', '0'], env);
      const url = await readOnly.url;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(await (await fetch(url)).text()).toContain('"csrf":null');
      const metrics = await fetch(`${url}metrics`);
      expect([metrics.status, await metrics.text()]).toEqual([200, expect.stringMatching(/^txbarrier_outbox_backlog[^ ]*status="parked"[^ ]* 1$/m)]);
      const refused = await requeue(url, { 'x-txbarrier-csrf': 'x', authorization: `Bearer ${env.TXBARRIER_DASHBOARD_TOKEN}` });
      expect([refused.status, ((await refused.json()) as { code: string }).code]).toEqual([403, 'ERR_TXBARRIER_DASHBOARD_READ_ONLY']);
      readOnly.child.kill('SIGTERM');
      expect(await readOnly.exited).toBe(0);

      const acting = startCli(['--port', '0', '--allow-actions'], env);
      const actingUrl = await acting.url;
      const token = /"csrf":"([^"]+)"/.exec(await (await fetch(actingUrl)).text())![1]!;
      expect((await requeue(actingUrl, { 'x-txbarrier-csrf': token, authorization: 'Bearer wrong-token-of-length' })).status).toBe(403);
      expect((await outbox.parked()).map((m) => m.id)).toEqual([id]);
      const done = await requeue(actingUrl, { 'x-txbarrier-csrf': token, authorization: `Bearer ${env.TXBARRIER_DASHBOARD_TOKEN}` });
      expect(await done.json()).toEqual({ requeued: 1 });
      expect(await outbox.parked()).toEqual([]);
      acting.child.kill('SIGTERM');
      expect(await acting.exited).toBe(0);
      expect(acting.output().stderr).toBe('');
    } finally {
      file.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses --allow-actions without a token in the environment, before serving (status 2)', async () => {
    const run = startCli(['sqlite:/nonexistent/x.db', '--port', '0', '--allow-actions'], { TXBARRIER_DASHBOARD_TOKEN: '' });
    await expect(run.url).rejects.toThrow(/^exited 2: txbarrier: --allow-actions needs a token .* TXBARRIER_DASHBOARD_TOKEN/);
    expect(await run.exited).toBe(2);
  });
});
