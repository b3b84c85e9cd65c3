import { validateHeaderName, validateHeaderValue } from 'node:http';
import { textProblem } from '../barrier/fields.js';
import { parseDuration } from '../duration.js';
import { BarrierConfigError, BarrierError, BarrierOngoing } from '../errors.js';
import { canonicalJson, parseIdempotencyKey, requestFingerprint } from './key.js';
import { type IdempotencyHooks, type IdempotencyOutcome, observeIdempotency } from './observe.js';
import { DEFAULT_IDEMPOTENCY_TABLE, idempotencySql, type IdempotencySql } from './sql.js';
import type { BarrierConnection, BarrierStore, Row } from '../transaction/store.js';

export { canonicalJson, parseIdempotencyKey, requestFingerprint } from './key.js';
export type { IdempotencyEvent, IdempotencyHooks, IdempotencyOutcome } from './observe.js';
export { DEFAULT_IDEMPOTENCY_TABLE, idempotencySchemaSql, idempotencySql, type IdempotencySql } from './sql.js';

/** The header that marks a replayed response. */
export const REPLAY_HEADER = 'idempotent-replayed';

/** What a handler returns: the response to send, and to store with its work. */
export interface IdempotentResponse {
  /**
   * 2xx–4xx: stored with the work and replayed to every repeat. 5xx: sent once, and the work rolls
   * back as if the handler had thrown, so the client's retry runs afresh.
   */
  status: number;
  /** A string (sent as text), bytes (a `Uint8Array`), or anything else (sent as JSON). Nothing: an empty body. */
  body?: unknown;
  /** Headers to send and to replay; `content-type` overrides the one chosen from the body. */
  headers?: Record<string, string>;
}

/** The parts of a request that a front reads out of its framework's request. */
export interface IdempotentRequest {
  method: string;
  /** The request target as received: path and query. */
  target: string;
  /** The `Idempotency-Key` header as the framework holds it. */
  key: string | readonly string[] | undefined;
  /**
   * The body as received (bytes or text); a canonical form where a front could not keep the bytes.
   * A function is called only once the key is known to be good (or absent where not required), so
   * a refused request's body is never read; a body over the limit of `readBody` is answered 413.
   */
  body: Uint8Array | string | undefined | (() => Promise<Uint8Array | string | undefined>);
}

/** What a front sends. */
export interface IdempotencyAnswer {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Uint8Array;
  outcome: IdempotencyOutcome;
  scope?: string;
  key?: string;
  /** For `busy`: the `BarrierOngoing` or database conflict the 503 stands for, reported to the hooks. */
  error?: unknown;
}

/** The options of every front's `idempotentRoute`. */
export interface IdempotencyOptions<Req> extends IdempotencyHooks {
  /**
   * Whose keys these are: the authenticated user, account or API key of the request. Keys are
   * unique per scope, so one client can never replay, or learn of, another client's response.
   * `'global'` puts every client in one namespace; say so only when clients cannot collide (one
   * trusted caller). A function that returns no string throws `IdempotencyScopeError`. Required.
   */
  scope: ((req: Req) => string) | 'global';
  /** Refuse a request without an `Idempotency-Key` header with 400; `false` runs it unguarded. Defaults to `true`. */
  required?: boolean;
  /**
   * How long a key is remembered after its first request: milliseconds or a duration (`'24h'`,
   * `'7d'`). A repeat after that runs afresh. Publish it to your API's clients. Defaults to `'24h'`.
   */
  lifetime?: number | string;
  /**
   * The largest response (body bytes plus stored headers) that may be stored. A handler answering
   * more throws `IdempotencyResponseTooLarge` and its work rolls back. Defaults to 65536.
   */
  maxResponseBytes?: number;
  /** The longest key accepted, in characters (at most 255, the column's width). Defaults to 255. */
  maxKeyLength?: number;
  /**
   * Also accept a bare key, unquoted (`Idempotency-Key: 5f2c…`, as Stripe-style clients send it):
   * 1 to `maxKeyLength` characters of an RFC 8941 token (letters, digits, ``!#$%&'*+-.^_`|~:/``),
   * the same key as its quoted form (`abc` is `"abc"`). Defaults to `false`: only the draft's
   * quoted sf-string.
   */
  acceptBareKeys?: boolean;
  /** `table` or `schema.table` of the keys; give the same to `ensureIdempotencySchema` and `pruneIdempotencyKeys`. Defaults to `idempotency_key`. */
  table?: string;
  /**
   * The URL of your API's idempotency documentation: the `type` of every problem answered (400,
   * 409, 422). Defaults to none, and problems are typed `about:blank`.
   */
  documentation?: string;
}

/**
 * The `scope` function returned no usable scope: a string of 1 to 255 characters without control
 * characters or lone surrogates (which two engines would store alike). Nothing was written.
 */
export class IdempotencyScopeError extends BarrierError {
  constructor(message: string) {
    super(message, { code: 'ERR_TXBARRIER_IDEMPOTENCY_SCOPE' });
  }
}

/**
 * The handler returned something that is not a response (a bad status, a header HTTP cannot carry
 * or the front sets itself, a body JSON cannot carry) or rejected with something that is not an
 * `Error` (kept as `cause`). Its work rolled back and nothing was stored, so a retry runs afresh.
 */
export class IdempotencyResponseError extends BarrierError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'ERR_TXBARRIER_IDEMPOTENCY_RESPONSE' });
  }
}

/** The handler's response is over `maxResponseBytes`, so it could not be stored: its work rolled back. */
export class IdempotencyResponseTooLarge extends BarrierError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`the response is ${size} bytes, over maxResponseBytes (${limit}); nothing was committed. Raise the limit or answer less.`, {
      code: 'ERR_TXBARRIER_IDEMPOTENCY_RESPONSE_TOO_LARGE',
    });
  }
}

/** Thrown by `readBody` for a body over its limit; the guard answers it with a 413, never rethrows it. */
class BodyTooLarge {
  constructor(readonly limit: number) {}
}

/** The option of the fronts that read the request body themselves (Koa, Hono). */
export interface IdempotencyBodyOptions {
  /**
   * The largest request body read, in bytes: a longer one (by its `content-length`, or as it
   * streams in) is answered 413 `application/problem+json` and nothing runs. Defaults to 1048576 (1 MiB).
   */
  maxBodyBytes?: number;
}

/** Checks `maxBodyBytes` when the route is made; returns it. */
export function bodyLimitOf(options: IdempotencyBodyOptions): number {
  const { maxBodyBytes = 1_048_576 } = options;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) {
    throw new BarrierConfigError(`idempotentRoute: maxBodyBytes must be a non-negative integer; got ${maxBodyBytes}`);
  }
  return maxBodyBytes;
}

/**
 * For fronts: reads a body of at most `limit` bytes, failing (the guard answers 413) as soon as the declared
 * `content-length` or the bytes read pass it. It stops reading there without ending `chunks`: the
 * front answers 413 and its server discards the rest, so the connection can still carry the answer.
 */
export async function readBody(chunks: AsyncIterable<Uint8Array | string>, length: string | null | undefined, limit: number): Promise<Buffer> {
  if (length && Number(length) > limit) throw new BodyTooLarge(limit);
  const parts: Buffer[] = [];
  let size = 0;
  const iterator = chunks[Symbol.asyncIterator]();
  for (;;) {
    const { done, value } = await iterator.next();
    if (done) return Buffer.concat(parts, size);
    const bytes = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    size += bytes.byteLength;
    if (size > limit) throw new BodyTooLarge(limit);
    parts.push(bytes);
  }
}

/** Runs handlers under `Idempotency-Key`: the engine-neutral algorithm every front calls. */
export interface IdempotencyGuard<Tx, Req> {
  /**
   * Answers `request`: a problem (a busy database is a 503), a replay, or `handler`'s response
   * committed with its work. Rejects with what the handler or the database threw, always an `Error`.
   */
  respond(request: IdempotentRequest, req: Req, handler: (tx: Tx) => Promise<IdempotentResponse> | IdempotentResponse): Promise<IdempotencyAnswer>;
}

const MAX_COLUMN = 255;

/** Checks the options once, when the route is made, and returns the guard its requests go through. */
export function idempotencyGuard<Tx, Req>(store: BarrierStore<Tx>, options: IdempotencyOptions<Req>): IdempotencyGuard<Tx, Req> {
  const { scope, required = true, lifetime = '24h', maxResponseBytes = 65_536, maxKeyLength = MAX_COLUMN, acceptBareKeys = false, documentation } = options;
  const table = options.table ?? DEFAULT_IDEMPOTENCY_TABLE;
  const engine = store.dialect.name;
  store.dialect.quoteTable(table);
  if (scope !== 'global' && typeof scope !== 'function') {
    throw new BarrierConfigError("idempotentRoute: scope is required: a function of the request (the authenticated client), or 'global'");
  }
  const lifetimeMs = parseDuration(lifetime, 'lifetime');
  if (lifetimeMs <= 0) throw new BarrierConfigError('idempotentRoute: lifetime must be positive');
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 0) {
    throw new BarrierConfigError(`idempotentRoute: maxResponseBytes must be a non-negative integer; got ${maxResponseBytes}`);
  }
  if (!Number.isInteger(maxKeyLength) || maxKeyLength < 1 || maxKeyLength > MAX_COLUMN) {
    throw new BarrierConfigError(`idempotentRoute: maxKeyLength must be an integer from 1 to ${MAX_COLUMN}; got ${maxKeyLength}`);
  }
  const statements = statementsOf(idempotencySql[engine], table);
  const problems = problemWriter(documentation);
  const inFlight = engine === 'sqlite' ? inFlightOf(store, table) : undefined;
  const observed = { engine, table };

  const scopeOf = (req: Req): string => {
    if (scope === 'global') return '';
    const value = scope(req);
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_COLUMN) {
      throw new IdempotencyScopeError(`idempotentRoute: scope(request) must return a string of 1 to ${MAX_COLUMN} characters; got ${describe(value)}`);
    }
    const problem = textProblem(value);
    if (problem) throw new IdempotencyScopeError(`idempotentRoute: scope(request) ${problem}: ${describe(value)}`);
    return value;
  };

  const guarded = async (request: IdempotentRequest, req: Req, handler: (tx: Tx) => Promise<IdempotentResponse> | IdempotentResponse) => {
    const key = parseIdempotencyKey(request.key, maxKeyLength, acceptBareKeys);
    const unkeyed = typeof key !== 'string' && key.kind === 'missing' && !required;
    if (typeof key !== 'string' && !unkeyed) return key.kind === 'missing' ? problems.missingKey() : problems.invalidKey(key.detail);
    const clientScope = unkeyed ? '' : scopeOf(req);
    let body: Uint8Array | string | undefined;
    try {
      body = typeof request.body === 'function' ? await request.body() : request.body;
    } catch (error) {
      if (error instanceof BodyTooLarge) return problems.bodyTooLarge(error.limit);
      throw error;
    }
    if (typeof key !== 'string') return runUnkeyed(store, handler, problems);
    const fingerprint = requestFingerprint(request.method, request.target, body);
    const identity = { scope: clientScope, key };
    const run = () => claimAndRun(store, statements, { ...identity, fingerprint, lifetimeMs, maxResponseBytes }, handler, problems);

    if (!inFlight) return { ...(await run()), ...identity };
    const id = `${clientScope}\u0000${key}`;
    if (inFlight.has(id)) return { ...problems.inFlight(), ...identity };
    inFlight.add(id);
    try {
      return { ...(await run()), ...identity };
    } finally {
      inFlight.delete(id);
    }
  };

  return {
    respond: (request, req, handler) => observeIdempotency(options, observed, request, () => guarded(request, req, handler)),
  };
}

// SQLite runs one transaction at a time per file, so a repeat would queue behind its first
// request instead of hearing 409 at once: the keys in flight in this process, per store and table,
// so every route sharing a store shares them.
const IN_FLIGHT = new WeakMap<object, Map<string, Set<string>>>();

function inFlightOf(store: object, table: string): Set<string> {
  let byTable = IN_FLIGHT.get(store);
  if (!byTable) IN_FLIGHT.set(store, (byTable = new Map()));
  let keys = byTable.get(table);
  if (!keys) byTable.set(table, (keys = new Set()));
  return keys;
}

interface Claim {
  scope: string;
  key: string;
  fingerprint: string;
  lifetimeMs: number;
  maxResponseBytes: number;
}

interface Statements {
  sql: IdempotencySql;
  claim: string;
  select: string;
  takeOver: string;
  complete: string;
}

function statementsOf(sql: IdempotencySql, table: string): Statements {
  return { sql, claim: sql.claim(table), select: sql.select(table), takeOver: sql.takeOver(table), complete: sql.complete(table) };
}

/** A 5xx from the handler: thrown to roll its work back, then sent. */
class NotStored {
  constructor(readonly answer: IdempotencyAnswer) {}
}

type Answered = Omit<IdempotencyAnswer, 'scope' | 'key'>;

/**
 * One transaction: claim the key (or find its row), then either answer from the row or run the
 * handler and store its response beside its work. A database conflict while claiming means the
 * key is held by a transaction still running: 409, never a wait.
 */
async function claimAndRun<Tx>(
  store: BarrierStore<Tx>,
  statements: Statements,
  claim: Claim,
  handler: (tx: Tx) => Promise<IdempotentResponse> | IdempotentResponse,
  problems: ProblemWriter,
): Promise<Answered> {
  let claiming = true;
  try {
    return await store.transaction(async (connection) => {
      const found = await claimKey(connection, statements, claim);
      if (found !== 'claimed') {
        if (found === 'held' || found.status === null) return problems.inFlight();
        if (found.fingerprint !== claim.fingerprint) return problems.mismatch();
        return replay(found);
      }
      claiming = false;
      const response = await runHandler(handler, connection.tx);
      const answer = encode(response, 'executed');
      if (answer.status >= 500) throw new NotStored({ ...answer, outcome: 'not-stored' });
      const headers = JSON.stringify(answer.headers);
      const size = answer.body.byteLength + Buffer.byteLength(headers);
      if (size > claim.maxResponseBytes) throw new IdempotencyResponseTooLarge(size, claim.maxResponseBytes);
      // The drivers need a Buffer: a view of the bytes, not a copy of them.
      const body = Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength);
      await connection.execute(statements.complete, [answer.status, headers, body, claim.scope, claim.key]);
      return answer;
    });
  } catch (error) {
    if (error instanceof NotStored) return error.answer;
    // A conflict while claiming is the key's own request still running; any other is the database's load.
    if (claiming && !(error instanceof BarrierOngoing) && store.dialect.isRetryable(error)) return problems.inFlight();
    return afterRollback(store, error, problems);
  }
}

/** The handler's response, or its rejection as an `Error` (never `undefined`, which Express reads as "no error"). */
async function runHandler<Tx>(handler: (tx: Tx) => Promise<IdempotentResponse> | IdempotentResponse, tx: Tx): Promise<IdempotentResponse> {
  try {
    return await handler(tx);
  } catch (error) {
    if (error instanceof Error) throw error;
    throw new IdempotencyResponseError(`the handler rejected with ${describe(error)}, not an Error; its work rolled back`, { cause: error });
  }
}

/**
 * What a failed transaction answers once rolled back: 503 for `BarrierOngoing` (a busy SQLite file,
 * a transaction timeout, or the handler's own) and for a database conflict (deadlock, lock
 * timeout), which a retry resolves; anything else is rethrown to the framework.
 */
function afterRollback(store: BarrierStore<unknown>, error: unknown, problems: ProblemWriter): Answered {
  if (error instanceof BarrierOngoing || store.dialect.isRetryable(error)) return { ...problems.busy(), error };
  throw error;
}

/** A route that does not require a key, called without one: the handler in a transaction, nothing stored; a 5xx still rolls back. */
async function runUnkeyed<Tx>(store: BarrierStore<Tx>, handler: (tx: Tx) => Promise<IdempotentResponse> | IdempotentResponse, problems: ProblemWriter): Promise<Answered> {
  try {
    return await store.transaction(async (connection) => {
      const answer = encode(await runHandler(handler, connection.tx), 'unkeyed');
      if (answer.status >= 500) throw new NotStored(answer);
      return answer;
    });
  } catch (error) {
    if (error instanceof NotStored) return error.answer;
    return afterRollback(store, error, problems);
  }
}

interface StoredRow {
  fingerprint: string;
  status: number | null;
  headers: string | null;
  body: Uint8Array | null;
}

/** `claimed`: this request owns the key now; `held`: another open transaction does; else the committed row. */
async function claimKey(connection: BarrierConnection<unknown>, statements: Statements, claim: Claim): Promise<'claimed' | 'held' | StoredRow> {
  const { sql } = statements;
  const now = Date.now();
  const expiresAt = now + claim.lifetimeMs;
  const { scope, key, fingerprint } = claim;
  let claimed = Number(await connection.execute(statements.claim, [scope, key, fingerprint, now, expiresAt])) === 1;
  if (!claimed) {
    const [row] = await connection.select(statements.select, [scope, key]);
    // Gone between the insert and the read: pruned, or taken over and rolled back. Retry.
    if (!row) return 'held';
    if (Number(row.expires_at) > now) return storedRow(row);
    // Expired: the key is free for a new request, which takes the row over.
    claimed = Number(await connection.execute(statements.takeOver, [fingerprint, now, expiresAt, scope, key, now])) === 1;
    if (!claimed) return 'held';
    if (sql.restoreWait) await connection.run(sql.restoreWait, []);
  }
  return 'claimed';
}

function storedRow(row: Row): StoredRow {
  const { fingerprint, status, headers, body } = row;
  if (typeof fingerprint !== 'string' || (body !== null && !(body instanceof Uint8Array))) {
    throw new BarrierError(`idempotency rows must come back as objects with a string fingerprint and a binary body; got ${describe(row)}`);
  }
  return {
    fingerprint: fingerprint.trim(),
    status: status === null ? null : Number(status),
    headers: typeof headers === 'string' ? headers : null,
    body,
  };
}

function replay(row: StoredRow): Answered {
  const headers = row.headers ? (JSON.parse(row.headers) as Record<string, string>) : {};
  return { status: row.status!, headers: { ...headers, [REPLAY_HEADER]: 'true' }, body: row.body ?? new Uint8Array(), outcome: 'replayed' };
}

/** The handler's response as bytes and lower-case headers; refuses what is not a response. */
function encode(response: IdempotentResponse, outcome: IdempotencyOutcome): Answered {
  if (response === null || typeof response !== 'object') {
    throw new IdempotencyResponseError(`the handler must return { status, body?, headers? }; got ${describe(response)}`);
  }
  const { status, body, headers = {} } = response;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new IdempotencyResponseError(`the handler's status must be an integer from 200 to 599; got ${describe(status)}`);
  }
  const lower: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') throw new IdempotencyResponseError(`header ${name} must be a string; got ${describe(value)}`);
    // Checked before the commit: a header the front cannot send would fail every replay too.
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch (error) {
      throw new IdempotencyResponseError(`the handler's header ${describe(name)}: ${describe(value)} cannot be sent`, { cause: error });
    }
    const lowerName = name.toLowerCase();
    if (FRAMING.has(lowerName)) {
      throw new IdempotencyResponseError(`the handler may not set ${lowerName}: the front frames the response (and a replay) itself`);
    }
    lower[lowerName] = value;
  }
  let bytes: Uint8Array;
  let type: string;
  if (body === undefined) {
    return { status, headers: lower, body: new Uint8Array(), outcome };
  } else if (body instanceof Uint8Array) {
    [bytes, type] = [body, 'application/octet-stream'];
  } else if (typeof body === 'string') {
    [bytes, type] = [Buffer.from(body), 'text/plain; charset=utf-8'];
  } else {
    let json: string | undefined;
    try {
      json = JSON.stringify(body);
    } catch (error) {
      throw new IdempotencyResponseError('the handler returned a body JSON cannot carry', { cause: error });
    }
    if (json === undefined) throw new IdempotencyResponseError(`the handler returned a body JSON cannot carry: ${describe(body)}`);
    [bytes, type] = [Buffer.from(json), 'application/json; charset=utf-8'];
  }
  return { status, headers: { 'content-type': type, ...lower }, body: bytes, outcome };
}

// Headers that frame the message or the connection: the front's server sets them for the bytes it
// sends, so a stored one would contradict the body or the connection on every replay.
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);

type ProblemWriter = ReturnType<typeof problemWriter>;

/** RFC 9457 problem details for the draft's three refusals, a busy database and a body too large. */
function problemWriter(documentation: string | undefined) {
  const problem = (status: number, phrase: string, title: string, code: string, detail: string, outcome: IdempotencyOutcome, headers: Record<string, string> = {}): Answered => {
    // With no documentation the type is about:blank, whose title must be the status phrase.
    const fields = documentation ? { type: documentation, title } : { type: 'about:blank', title: phrase };
    const body = Buffer.from(JSON.stringify({ ...fields, status, detail, code }));
    const link: Record<string, string> = documentation ? { link: `<${documentation}>; rel="describedby"` } : {};
    return { status, headers: { 'content-type': 'application/problem+json', ...link, ...headers }, body, outcome };
  };
  return {
    missingKey: () =>
      problem(400, 'Bad Request', 'Idempotency-Key is missing', 'idempotency-key-missing', 'This operation requires an Idempotency-Key header.', 'missing-key'),
    invalidKey: (detail: string) => problem(400, 'Bad Request', 'Idempotency-Key is invalid', 'idempotency-key-invalid', `${detail}.`, 'invalid-key'),
    mismatch: () =>
      problem(
        422,
        'Unprocessable Content',
        'Idempotency-Key is already used',
        'idempotency-key-reused',
        'This Idempotency-Key was already used with a different request (method, path or body). Use a new key for a new request.',
        'mismatch',
      ),
    inFlight: () =>
      problem(
        409,
        'Conflict',
        'A request is outstanding for this Idempotency-Key',
        'idempotency-key-in-flight',
        'A request with this Idempotency-Key is still being processed. Retry it later, unchanged.',
        'in-flight',
        { 'retry-after': '1' },
      ),
    busy: () =>
      problem(
        503,
        'Service Unavailable',
        'The service is busy',
        'idempotency-busy',
        'The database is busy; nothing was done. Retry this request later, unchanged, with the same Idempotency-Key.',
        'busy',
        { 'retry-after': '1' },
      ),
    bodyTooLarge: (limit: number) =>
      problem(413, 'Content Too Large', 'The request body is too large', 'idempotency-body-too-large', `The request body must be at most ${limit} bytes.`, 'body-too-large'),
  };
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Options of `ensureIdempotencySchema` and `pruneIdempotencyKeys`. */
export interface IdempotencyTableOptions {
  /** `table` or `schema.table`, as given to the routes. Defaults to `idempotency_key`. */
  table?: string;
}

/**
 * Creates the key table and its expiry index if missing, in one transaction, under the engine's
 * schema lock where it has one (concurrent CREATE … IF NOT EXISTS race on PostgreSQL's catalogs).
 * Idempotent.
 */
export async function ensureIdempotencySchema(store: BarrierStore<unknown>, options: IdempotencyTableOptions = {}): Promise<void> {
  const table = options.table ?? DEFAULT_IDEMPOTENCY_TABLE;
  store.dialect.quoteTable(table);
  const statements = idempotencySql[store.dialect.name].createSchema(table);
  const lock = store.dialect.schemaLock;
  await store.transaction(async (connection) => {
    if (lock) await connection.run(lock, []);
    for (const statement of statements) await connection.run(statement, []);
  });
}

export interface PruneKeysOptions extends IdempotencyTableOptions {
  /** Rows deleted per transaction. Defaults to 1000. */
  batchSize?: number;
  /** Called after each batch with the running total. */
  onProgress?: (deleted: number) => void;
}

/**
 * Deletes expired keys (past their route's `lifetime`) in short transactions; resolves to how many.
 * An expired key is never replayed, so pruning changes no answer, only the table's size.
 */
export async function pruneIdempotencyKeys(store: BarrierStore<unknown>, options: PruneKeysOptions = {}): Promise<number> {
  const { batchSize = 1000, onProgress } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new BarrierConfigError(`batchSize must be a positive integer; got ${batchSize}`);
  const table = options.table ?? DEFAULT_IDEMPOTENCY_TABLE;
  const statement = idempotencySql[store.dialect.name].pruneBatch(table);
  let deleted = 0;
  for (;;) {
    const removed = Number(await store.transaction((connection) => connection.execute(statement, [Date.now(), batchSize])));
    deleted += removed;
    onProgress?.(deleted);
    if (removed < batchSize) return deleted;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** For fronts that received a parsed body and no bytes: the canonical JSON they hash instead. */
export function bodyForFingerprint(raw: Uint8Array | string | undefined, parsed: unknown): Uint8Array | string | undefined {
  if (raw !== undefined) return raw;
  if (parsed === undefined || parsed === null) return undefined;
  if (parsed instanceof Uint8Array || typeof parsed === 'string') return parsed;
  return canonicalJson(parsed);
}
