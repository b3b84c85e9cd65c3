/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, against a page
 * served from SQLite with a relay running. The relay parks a message while its broker refuses;
 * the page shows it with its error; a click on Requeue makes it pending and the relay delivers
 * it. A read-only dashboard shows no action and refuses one sent anyway. The page must load
 * without a single console error (its Content-Security-Policy allows only its own nonce).
 *
 * With TXBARRIER_SCREENSHOTS=1 it also fills the tables and writes docs/dashboard*.png.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendResponse, webRequest } from '../../../adapters/http/node-web.js';
import { fillDashboardTables } from '../../../bench/dashboard-data.js';
import { createDashboard, type DashboardOptions } from '../../../src/dashboard/index.js';
import { ensureIdempotencySchema } from '../../../src/idempotency/guard.js';
import { createRelay, type Relay, type RelayEvent } from '../../../src/messaging/outbox/index.js';
import { type EngineHarness, openEngine } from '../../outbox/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const KEYS = 'idempotency_key';

/** Serves a dashboard at the root of a loopback port. */
async function serveDashboard(options: DashboardOptions): Promise<{ url: string; server: Server }> {
  const dashboard = createDashboard(db.store, options);
  const server = createServer((req, res) => {
    const request = webRequest(req, req.url ?? '/');
    void dashboard.handle(request, '', request).then((response) => sendResponse(res, response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

let db: EngineHarness;
let browser: Browser;
let relay: Relay;
const servers: Server[] = [];
let brokerUp = false;
const delivered: string[] = [];
const parkedEvents: RelayEvent[] = [];

beforeAll(async () => {
  db = await openEngine('sqlite');
  await ensureIdempotencySchema(db.store, { table: KEYS });
  relay = createRelay(db.outbox, {
    publisher: {
      publish: async (message) => {
        if (!brokerUp) throw new Error('broker unreachable: connection refused');
        delivered.push(message.id);
      },
    },
    pollInterval: 100,
    retry: { maxAttempts: 1 },
    onParked: (event) => parkedEvents.push(event),
  });
  relay.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-extensions', '--no-first-run'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await relay?.stop();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  await db?.close();
});

/** A page that fails the test on any console error or uncaught exception. */
async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
  const errors: string[] = [];
  page.on('console', (message) => void (message.type() === 'error' && errors.push(message.text())));
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(url);
  await page.waitForSelector('body[data-loaded]');
  return { page, errors };
}

describe('dashboard in Chromium', () => {
  it('shows a parked message with its error, requeues it on a click, and the relay delivers it', async () => {
    const id = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'orders', key: 'order-7', payload: { total: 12 } }));
    await expect.poll(() => parkedEvents.map((e) => e.id), { timeout: 10_000 }).toEqual([id]);

    const { url, server } = await serveDashboard({ outbox: { table: db.outbox.table }, idempotency: { table: KEYS }, actions: { authorize: () => true }, refreshInterval: '1s' });
    servers.push(server);
    const { page, errors } = await openPage(url);
    const row = page.locator(`#outbox tr[data-id="${id}"]`);
    await row.waitFor();
    expect(await row.locator('td.err').textContent()).toBe('Error: broker unreachable: connection refused');
    expect(await page.locator('#mode').textContent()).toBe('actions enabled');

    brokerUp = true;
    await row.getByRole('button', { name: 'Requeue' }).click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 5000 }).toContain('"requeued":1');
    await expect.poll(() => delivered, { timeout: 10_000 }).toEqual([id]);
    // The page sees it leave: no parked row, and one sent recently.
    await page.locator(`#outbox tr[data-id="${id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
    await expect.poll(async () => page.locator('#outbox .tile', { hasText: 'sent in the last' }).locator('b').textContent(), { timeout: 10_000 }).toBe('1');
    expect(await db.outbox.counts()).toEqual({ pending: 0, sent: 1, parked: 0 });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('read-only: shows no action, and refuses one sent from the page anyway', async () => {
    brokerUp = false;
    const id = await db.outbox.store.transaction(({ tx }) => db.outbox.enqueue(tx, { topic: 'orders', payload: 'x' }));
    await expect.poll(() => parkedEvents.map((e) => e.id), { timeout: 10_000 }).toContain(id);
    const { url, server } = await serveDashboard({ outbox: { table: db.outbox.table }, idempotency: { table: KEYS } });
    servers.push(server);
    const { page, errors } = await openPage(url);
    await page.locator(`#outbox tr[data-id="${id}"]`).waitFor();
    expect(await page.locator('#mode').textContent()).toBe('read-only');
    expect(await page.getByRole('button', { name: 'Requeue' }).count()).toBe(0);
    const answer = await page.evaluate(async (messageId) => {
      const response = await fetch(`api/actions/requeue?id=${messageId}`, { method: 'POST', headers: { 'x-txbarrier-csrf': 'guess' } });
      return { status: response.status, body: await response.json() };
    }, id);
    expect(answer).toEqual({ status: 403, body: { code: 'ERR_TXBARRIER_DASHBOARD_READ_ONLY', message: expect.any(String) } });
    expect((await db.outbox.parked()).map((m) => m.id)).toContain(id);
    // The browser reports the refused request itself, and nothing else.
    expect(errors).toEqual(['Failed to load resource: the server responded with a status of 403 (Forbidden)']);

    if (process.env.TXBARRIER_SCREENSHOTS === '1') await screenshots(url, page);
    await page.close();
  });
});

/** The pictures in docs/dashboard.md: the tables filled as bench/dashboard-data.ts fills them, a minute of backlog sampled. */
async function screenshots(readOnlyUrl: string, readOnly: Page): Promise<void> {
  await relay.stop();
  await fillDashboardTables('sqlite', (sql) => db.query(sql), { outbox: db.outbox.table, barrier: db.store.table, keys: KEYS }, { outbox: 20_000, barrier: 50_000, keys: 5000 });
  const { url, server } = await serveDashboard({ outbox: { table: db.outbox.table }, idempotency: { table: KEYS }, actions: { authorize: () => true }, refreshInterval: '1s' });
  servers.push(server);
  const { page } = await openPage(url);
  // A relay draining the backlog while the page samples it.
  brokerUp = true;
  const draining = createRelay(db.outbox, { publisher: { publish: () => new Promise<void>((resolve) => setTimeout(resolve, 50)) }, pollInterval: 100, batchSize: 10, retainSent: false });
  draining.start();
  await page.waitForTimeout(8000);
  await page.screenshot({ path: 'docs/dashboard.png', fullPage: true });
  await draining.stop();
  await readOnly.goto(readOnlyUrl);
  await readOnly.waitForSelector('body[data-loaded]');
  await readOnly.locator('#barrier').screenshot({ path: 'docs/dashboard-barrier.png' });
  await page.close();
}
