import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseDuration } from '../duration.js';
import { BarrierConfigError, BarrierError } from '../errors.js';
import { DEFAULT_IDEMPOTENCY_TABLE } from '../idempotency/sql.js';
import { pruneIdempotencyKeys } from '../idempotency/guard.js';
import { createOutbox, DEFAULT_OUTBOX_TABLE } from '../messaging/outbox/outbox.js';
import { checkPrune } from '../transaction/define-store.js';
import type { BarrierStore } from '../transaction/store.js';
import { dashboardPage } from './page.js';
import { readSnapshot, type SnapshotSettings } from './snapshot.js';

/** What a person may do from the page besides looking. Without it the dashboard is read-only. */
export interface DashboardActions<Native> {
  /**
   * Decides whether this request may act (requeue, park, prune): check your session, role or token
   * here. It receives the Web `Request` and the framework's own request object (Express's `req`,
   * Fastify's `request`, Koa's `ctx`, Hono's `c`; the `Request` again where there is none).
   * Called for every action, after the CSRF check. Required.
   */
  authorize(request: Request, native: Native): boolean | Promise<boolean>;
  /**
   * Whether the page asks for a token and sends it as `Authorization: Bearer <token>` with each
   * action, for an `authorize` that checks one (the CLI's `--allow-actions`). Defaults to `false`.
   */
  promptForToken?: boolean;
}

export interface DashboardOptions<Native = Request> {
  /** The outbox table, or `false` to leave the outbox out. Defaults to `txbarrier_outbox`. */
  outbox?: { table?: string } | false;
  /** The idempotency-key table, or `false` to leave it out. Defaults to `idempotency_key`. */
  idempotency?: { table?: string } | false;
  /**
   * The barrier table is the store's. `retention` is the `olderThan` your prune runs with: the
   * page compares the oldest row with it, counts what a prune would delete, and the prune action
   * uses it (`force` allows one under a day, as for `prune`). `false` leaves the barrier out.
   * Defaults to `{ retention: '7d' }`.
   */
  barrier?: { retention?: number | string; force?: boolean } | false;
  /** Requeue, park and prune from the page; see `DashboardActions`. Defaults to none: read-only. */
  actions?: DashboardActions<Native>;
  /**
   * Whether a message's headers and payload can be opened from the page. They may hold personal
   * data, so they stay hidden unless you say so. Defaults to `false`.
   */
  showPayloads?: boolean;
  /** An idempotency key committed without a response for longer than this is shown as stuck. Defaults to `'1m'`. */
  stuckAfter?: number | string;
  /** The window "sent recently" counts. Defaults to `'5m'`. */
  recentWindow?: number | string;
  /**
   * The most rows any one count reads (larger counts show as "at least", or as the engine's
   * estimate for the barrier table), so a page view costs the same at a million rows as at a
   * thousand. Each counted row costs a little (bench/RESULTS.md: about 10 ms per 1,000 pending
   * messages on a loaded machine), so raise it with care. Defaults to `10000`.
   */
  countLimit?: number;
  /** How often the open page reads again and samples the backlog chart. Defaults to `'5s'`. */
  refreshInterval?: number | string;
  /** The page's heading. Defaults to `'txbarrier'`. */
  title?: string;
  /**
   * Table gauges in Prometheus' text format, answered at `GET <path>/metrics` (`tableMetrics(…)`
   * from `txbarrier`, or anything with a `prometheus()` method). Defaults to none: `/metrics` is 404.
   */
  metrics?: { prometheus(): Promise<string> };
}

/** The framework-free dashboard: adapters hand it a Web `Request` and send back its `Response`. */
export interface Dashboard<Native = Request> {
  /**
   * Answers one request under the path the dashboard is mounted at (`basePath`, e.g. `/ops`,
   * without a trailing slash; `''` at the root). `native` is passed to `authorize`.
   */
  handle(request: Request, basePath: string, native: Native): Promise<Response>;
}

/** A dashboard request refused: read-only, unauthorised, a failed CSRF check, bad input, or a message in the wrong state. */
export class DashboardRequestError extends BarrierError {
  constructor(
    readonly status: number,
    message: string,
    code: string,
  ) {
    super(message, { code });
  }
}

const DRY_RUN_VALID_MS = 10 * 60_000;
const CSRF_HEADER = 'x-txbarrier-csrf';
const ID = /^[0-9A-Za-z-]{1,64}$/;

/**
 * A dashboard for the outbox, the barrier table and the idempotency keys on `store`'s database.
 * Read-only unless `actions` is given. Options are checked here: a bad one throws
 * `BarrierConfigError` (`ERR_TXBARRIER_OPTION`, or `ERR_TXBARRIER_RETENTION`).
 */
export function createDashboard<Native = Request>(store: BarrierStore<any>, options: DashboardOptions<Native> = {}): Dashboard<Native> {
  const settings = settingsOf(store, options);
  const { actions } = options;
  if (actions !== undefined && typeof actions?.authorize !== 'function') {
    throw new BarrierConfigError('actions.authorize must be a function (request, native) => boolean', { code: 'ERR_TXBARRIER_OPTION' });
  }
  const refreshMs = duration(options.refreshInterval ?? '5s', 'refreshInterval');
  const barrier = options.barrier === false ? undefined : options.barrier ?? {};
  const outbox = settings.outboxTable === undefined ? undefined : createOutbox(store, { table: settings.outboxTable });
  // Per process: a restart invalidates open pages' tokens, which then reload.
  const secret = randomBytes(32);
  const sign = (text: string) => createHmac('sha256', secret).update(text).digest('base64url');
  const csrfToken = sign('csrf');

  const page = (nonce: string) =>
    dashboardPage({
      nonce,
      title: options.title ?? 'txbarrier',
      refreshMs,
      csrf: actions ? csrfToken : null,
      promptForToken: actions?.promptForToken === true,
      showPayloads: options.showPayloads === true,
    });

  async function act(request: Request, native: Native, action: string, url: URL): Promise<unknown> {
    if (!actions) throw new DashboardRequestError(403, 'the dashboard is read-only: actions are enabled with the actions option', 'ERR_TXBARRIER_DASHBOARD_READ_ONLY');
    checkCsrf(request, url, csrfToken);
    if (!(await actions.authorize(request, native))) throw new DashboardRequestError(403, 'not authorised to act', 'ERR_TXBARRIER_DASHBOARD_FORBIDDEN');
    if (action === 'requeue' || action === 'park') {
      if (!outbox) throw notFound();
      const id = idParam(url);
      if (action === 'requeue') {
        const requeued = await outbox.requeue([id]);
        if (requeued === 0) throw new DashboardRequestError(409, `message ${id} is not parked`, 'ERR_TXBARRIER_DASHBOARD_STATE');
        return { requeued };
      }
      const parked = await store.transaction(async (c) => {
        const [row] = await c.select(outbox.sql.pendingSeq(), [id]);
        return row === undefined ? 0 : c.execute(outbox.sql.park(), ['parked from the dashboard', row.seq, id]);
      });
      if (parked === 0) throw new DashboardRequestError(409, `message ${id} is not pending`, 'ERR_TXBARRIER_DASHBOARD_STATE');
      return { parked };
    }
    if (action === 'prune') {
      checkDryRun(url.searchParams.get('dryRun'), sign);
      const table = url.searchParams.get('table');
      if (table === 'barrier' && barrier) return { deleted: await store.prune({ olderThan: settings.retentionMs, force: barrier.force === true }) };
      if (table === 'idempotency' && settings.idempotencyTable !== undefined) {
        return { deleted: await pruneIdempotencyKeys(store, { table: settings.idempotencyTable }) };
      }
      throw new DashboardRequestError(400, 'prune needs table=barrier or table=idempotency, one the dashboard shows', 'ERR_TXBARRIER_DASHBOARD_INPUT');
    }
    throw notFound();
  }

  async function route(request: Request, basePath: string, native: Native): Promise<Response> {
    const url = new URL(request.url);
    if (!url.pathname.startsWith(basePath)) throw notFound();
    const path = url.pathname.slice(basePath.length);
    const method = request.method.toUpperCase();
    if (path === '' && method === 'GET') return new Response(null, { status: 308, headers: { location: `${url.pathname}/${url.search}` } });
    if (path === '/' && method === 'GET') {
      const nonce = randomBytes(16).toString('base64');
      return new Response(page(nonce), { headers: { 'content-type': 'text/html; charset=utf-8', ...securityHeaders(nonce) } });
    }
    if (path === '/api/snapshot' && method === 'GET') {
      const snapshot = await readSnapshot(store, settings);
      const at = Date.now();
      return json(200, { ...snapshot, actions: actions !== undefined, dryRun: actions ? `${at}.${sign(`dry-run ${at}`)}` : null });
    }
    if (path === '/api/message' && method === 'GET') {
      if (!options.showPayloads) throw new DashboardRequestError(403, 'payloads and headers are hidden: enable them with showPayloads', 'ERR_TXBARRIER_DASHBOARD_HIDDEN');
      if (!outbox) throw notFound();
      const id = idParam(url);
      const [row] = await store.transaction((c) => c.select(outbox.sql.message(), [id]));
      if (!row) throw notFound();
      const payload = Buffer.from(row.payload as Uint8Array);
      return json(200, { ...row, payload: payload.toString('utf8'), payload_base64: payload.toString('base64') });
    }
    if (path === '/metrics' && method === 'GET' && options.metrics) {
      return new Response(await options.metrics.prometheus(), { headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' } });
    }
    const action = /^\/api\/actions\/([a-z]+)$/.exec(path)?.[1];
    if (action && method === 'POST') return json(200, await act(request, native, action, url));
    throw notFound();
  }

  return {
    async handle(request, basePath, native) {
      try {
        return await route(request, basePath.replace(/\/+$/, ''), native);
      } catch (error) {
        if (error instanceof DashboardRequestError) return json(error.status, { code: error.code, message: error.message });
        throw error;
      }
    },
  };
}

function settingsOf(store: BarrierStore<unknown>, options: DashboardOptions<any>): SnapshotSettings {
  const countLimit = options.countLimit ?? 10_000;
  if (!Number.isInteger(countLimit) || countLimit < 1) {
    throw new BarrierConfigError(`countLimit must be a positive integer; got ${JSON.stringify(countLimit)}`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  const table = (option: { table?: string } | false | undefined, fallback: string) => {
    if (option === false) return undefined;
    const name = option?.table ?? fallback;
    store.dialect.quoteTable(name);
    return name;
  };
  const barrier = options.barrier === false ? undefined : options.barrier ?? {};
  const retentionMs = barrier ? checkPrune({ olderThan: barrier.retention ?? '7d', force: barrier.force }).retentionMs : 0;
  return {
    outboxTable: table(options.outbox, DEFAULT_OUTBOX_TABLE),
    idempotencyTable: table(options.idempotency, DEFAULT_IDEMPOTENCY_TABLE),
    barrier: barrier !== undefined,
    retentionMs,
    stuckAfterMs: duration(options.stuckAfter ?? '1m', 'stuckAfter'),
    recentMs: duration(options.recentWindow ?? '5m', 'recentWindow'),
    countLimit,
    listLimit: 20,
  };
}

function duration(value: number | string, name: string): number {
  try {
    return parseDuration(value, name);
  } catch (error) {
    throw new BarrierConfigError((error as Error).message, { code: 'ERR_TXBARRIER_OPTION' });
  }
}

/**
 * A form or a script on another site can send a POST with the user's cookies, but not a custom
 * header without CORS (which the dashboard never grants), and cannot read the page's token. The
 * Origin check refuses what the browser says came from elsewhere.
 */
function checkCsrf(request: Request, url: URL, token: string): void {
  const sent = request.headers.get(CSRF_HEADER) ?? '';
  const origin = request.headers.get('origin');
  const site = request.headers.get('sec-fetch-site');
  // By host: behind a TLS-terminating proxy the server sees http while the browser says https.
  const sameOrigin = (origin === null || hostOf(origin) === url.host) && (site === null || site === 'same-origin');
  if (!sameOrigin || !equal(sent, token)) {
    throw new DashboardRequestError(403, 'CSRF check failed: reload the page and try again', 'ERR_TXBARRIER_DASHBOARD_CSRF');
  }
}

/** A prune must follow a dry run this process served (any snapshot is one) in the last ten minutes. */
function checkDryRun(value: string | null, sign: (text: string) => string): void {
  const [at, signature] = (value ?? '').split('.');
  const time = Number(at);
  if (!signature || !equal(signature, sign(`dry-run ${at}`)) || !(Date.now() - time < DRY_RUN_VALID_MS)) {
    throw new DashboardRequestError(400, 'prune needs a dry run first: reload the page, check what it would delete, then prune', 'ERR_TXBARRIER_DASHBOARD_DRY_RUN');
  }
}

function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function idParam(url: URL): string {
  const id = url.searchParams.get('id') ?? '';
  if (!ID.test(id)) throw new DashboardRequestError(400, `id must be a message id; got ${JSON.stringify(id)}`, 'ERR_TXBARRIER_DASHBOARD_INPUT');
  return id;
}

function notFound(): DashboardRequestError {
  return new DashboardRequestError(404, 'not found', 'ERR_TXBARRIER_DASHBOARD_NOT_FOUND');
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8', ...securityHeaders() } });
}

/** Nothing cached, framed or loaded from elsewhere; the page's one script and style carry the nonce. */
function securityHeaders(nonce?: string): Record<string, string> {
  const scripts = nonce === undefined ? "'none'" : `'nonce-${nonce}'`;
  return {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': `default-src 'none'; script-src ${scripts}; style-src ${scripts}; connect-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
  };
}
