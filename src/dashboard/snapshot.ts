import { createOutbox } from '../messaging/outbox/outbox.js';
import { idempotencySql } from '../idempotency/sql.js';
import type { BarrierConnection, BarrierStore, Row } from '../transaction/store.js';

/** What the dashboard reads, and how far: the settings `createDashboard` checked. */
export interface SnapshotSettings {
  /** The outbox table, or undefined for none. */
  outboxTable?: string;
  /** The idempotency-key table, or undefined for none. */
  idempotencyTable?: string;
  /** Whether the barrier table is shown. */
  barrier: boolean;
  /** The retention `prune` would use, in ms. */
  retentionMs: number;
  /** An idempotency key without a response older than this is stuck, in ms. */
  stuckAfterMs: number;
  /** What "sent recently" means, in ms. */
  recentMs: number;
  /** The most rows one count reads. */
  countLimit: number;
  /** Pending and parked messages listed. */
  listLimit: number;
}

/** Age histogram boundaries in seconds: under 1 min, 1–5 min, 5–15 min, 15 min–1 h, 1–6 h, 6–24 h, a day or more. */
export const AGE_BOUNDS = [60, 300, 900, 3600, 21_600, 86_400] as const;

/** The newest barrier rows the consumer breakdown reads. */
const CONSUMER_SAMPLE = 10_000;

/** A count that stopped at the limit: `capped` means "at least `count`". */
export interface BoundedCount {
  count: number;
  capped: boolean;
}

/** The oldest messages of one status, at most the count limit of them. */
export interface StatusSummary extends BoundedCount {
  /** Seconds since the oldest was enqueued; null when there is none. */
  oldestSeconds: number | null;
  /** Hidden from relays until a later time: leased by a relay, or waiting for a retry. */
  held: number;
  /** Held and never failed: leased by a relay, its publish in flight. */
  leased: number;
  /** Messages per age bucket (`AGE_BOUNDS`), of those counted. */
  ages: number[];
  /** The oldest few, as `outbox pending` / `outbox parked` list them. */
  messages: DashboardMessage[];
}

export interface DashboardMessage {
  id: string;
  topic: string;
  key: string | null;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  availableAt: string;
}

export interface OutboxSnapshot {
  table: string;
  pending: StatusSummary;
  parked: StatusSummary;
  /** Of the newest `examined` sent messages still in the table, `recent` were sent within `windowSeconds`. */
  sent: { examined: number; recent: number; windowSeconds: number };
}

export interface BarrierSnapshot {
  table: string;
  /** `exact`: counted. `estimate`: the engine's statistics, because there are more rows than the count limit. `at-least`: no statistics either. */
  rows: { count: number; kind: 'exact' | 'estimate' | 'at-least' };
  /** Seconds since the oldest row was written; null for an empty table. */
  oldestSeconds: number | null;
  retentionSeconds: number;
  /** What `prune` with this retention would delete now (a dry run: nothing is deleted). */
  prunable: BoundedCount;
  /** Consumer keys (`consumer/source`) by their rows among the newest `examined` rows, busiest first (at most 20). */
  consumers: { examined: number; keys: { key: string; rows: number }[] };
}

export interface IdempotencySnapshot {
  table: string;
  /** Past their lifetime, awaiting `pruneIdempotencyKeys`. */
  expired: BoundedCount;
  /** Live keys (counted up to the limit, those expiring first) by state. */
  live: BoundedCount & { completed: number; inProgress: number; stuck: number };
  stuckAfterSeconds: number;
}

/** A table the dashboard was told to show that does not exist. */
export interface MissingTable {
  table: string;
  missing: true;
}

export interface Snapshot {
  /** When it was read, by this process's clock. */
  at: string;
  countLimit: number;
  ageBounds: readonly number[];
  outbox: OutboxSnapshot | MissingTable | null;
  barrier: BarrierSnapshot | MissingTable | null;
  idempotency: IdempotencySnapshot | MissingTable | null;
}

/**
 * Reads every section, each in a short transaction of its own (a missing table on PostgreSQL
 * aborts its transaction, and must not take the other sections with it). Every statement reads at
 * most `countLimit` rows or an index's end; none adds an index.
 */
export async function readSnapshot(store: BarrierStore<unknown>, settings: SnapshotSettings): Promise<Snapshot> {
  const [outbox, barrier, idempotency] = await Promise.all([
    settings.outboxTable === undefined ? null : section(store, settings.outboxTable, (c) => readOutbox(store, c, settings.outboxTable!, settings)),
    settings.barrier ? section(store, store.table, (c) => readBarrier(store, c, settings)) : null,
    settings.idempotencyTable === undefined ? null : section(store, settings.idempotencyTable, (c) => readIdempotency(store, c, settings.idempotencyTable!, settings)),
  ]);
  return { at: new Date().toISOString(), countLimit: settings.countLimit, ageBounds: AGE_BOUNDS, outbox, barrier, idempotency };
}

async function section<T>(store: BarrierStore<unknown>, table: string, read: (c: BarrierConnection<unknown>) => Promise<T>): Promise<T | MissingTable> {
  try {
    return await store.transaction(read);
  } catch (error) {
    if (store.dialect.isMissingTable(error)) return { table, missing: true };
    throw error;
  }
}

async function readOutbox(store: BarrierStore<unknown>, c: BarrierConnection<unknown>, table: string, s: SnapshotSettings): Promise<OutboxSnapshot> {
  const { sql } = createOutbox(store, { table });
  const summary = async (status: 'pending' | 'parked'): Promise<StatusSummary> => {
    const [row] = await c.select(sql.summary(status, AGE_BOUNDS.length), [...AGE_BOUNDS, s.countLimit]);
    const count = Number(row!.n);
    const older = AGE_BOUNDS.map((_, i) => Number(row![`older_${i}`]));
    const ages = [count - older[0]!, ...older.map((n, i) => n - (older[i + 1] ?? 0))];
    const messages = (await c.select(sql.list(status), [s.listLimit])).map(messageOf);
    return {
      count,
      capped: count >= s.countLimit,
      oldestSeconds: row!.oldest == null ? null : Number(row!.oldest),
      held: Number(row!.held),
      leased: Number(row!.leased),
      ages,
      messages,
    };
  };
  const pending = await summary('pending');
  const parked = await summary('parked');
  const [sent] = await c.select(sql.recentlySent(), [s.recentMs / 1000, s.countLimit]);
  return { table, pending, parked, sent: { examined: Number(sent!.n), recent: Number(sent!.recent), windowSeconds: s.recentMs / 1000 } };
}

async function readBarrier(store: BarrierStore<unknown>, c: BarrierConnection<unknown>, s: SnapshotSettings): Promise<BarrierSnapshot> {
  const sql = store.dialect.stats(store.table, store.placeholder);
  const seconds = Math.floor(s.retentionMs / 1000);
  const counted = Number((await c.select(sql.countUpTo, [s.countLimit + 1]))[0]!.n);
  let rows: BarrierSnapshot['rows'] = { count: counted, kind: 'exact' };
  if (counted > s.countLimit) {
    const estimate = sql.estimate === undefined ? undefined : (await c.select(sql.estimate, []))[0]?.n;
    // Statistics lag: an estimate under what was just counted says less than the count does.
    rows = estimate != null && Number(estimate) > s.countLimit ? { count: Number(estimate), kind: 'estimate' } : { count: s.countLimit, kind: 'at-least' };
  }
  const age = (await c.select(sql.oldestAge, []))[0]?.age;
  const prunable = Number((await c.select(sql.prunable, [seconds, s.countLimit]))[0]!.n);
  // Rows are read by create_time, then their branch: a sample, so the cost stays small at any size.
  const sample = Math.min(s.countLimit, CONSUMER_SAMPLE);
  const consumers = await c.select(sql.recentConsumers, [sample]);
  return {
    table: store.table,
    rows,
    oldestSeconds: age == null ? null : Number(age),
    retentionSeconds: seconds,
    prunable: { count: prunable, capped: prunable >= s.countLimit },
    consumers: { examined: Math.min(sample, counted), keys: consumers.map((row) => ({ key: String(row.branch_id), rows: Number(row.n) })) },
  };
}

async function readIdempotency(store: BarrierStore<unknown>, c: BarrierConnection<unknown>, table: string, s: SnapshotSettings): Promise<IdempotencySnapshot> {
  const sql = idempotencySql[store.dialect.name];
  const now = Date.now();
  const expired = Number((await c.select(sql.expiredCount(table), [now, s.countLimit]))[0]!.n);
  const [live] = await c.select(sql.liveSummary(table), [now - s.stuckAfterMs, now, s.countLimit]);
  const examined = Number(live!.n);
  const inProgress = Number(live!.open);
  return {
    table,
    expired: { count: expired, capped: expired >= s.countLimit },
    live: { count: examined, capped: examined >= s.countLimit, completed: examined - inProgress, inProgress, stuck: Number(live!.stuck) },
    stuckAfterSeconds: s.stuckAfterMs / 1000,
  };
}

function messageOf(row: Row): DashboardMessage {
  return {
    id: String(row.id),
    topic: String(row.topic),
    key: row.msg_key == null ? null : String(row.msg_key),
    attempts: Number(row.attempts),
    lastError: row.last_error == null ? null : String(row.last_error),
    createdAt: String(row.created_at),
    availableAt: String(row.available_at),
  };
}
