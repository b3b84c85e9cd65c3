import type { Placeholder } from '../../dialects/dialect.js';
import { keyPart } from '../../barrier/key.js';
import { BarrierError } from '../../errors.js';
import { recordEnqueued } from '../../observe/metrics.js';
import { uuidv7 } from './id.js';
import { pruneSent } from './prune.js';
import { type OutboxSql, outboxSql, type OutboxStatus } from './sql.js';

export type { OutboxStatus } from './sql.js';
import { withTraceContext } from './trace.js';
import { commitWaker } from './wake.js';
import type { BarrierConnection, BarrierExecutor, BarrierStore } from '../../transaction/store.js';

/** What `enqueue` is given. */
export interface OutboxMessage {
  /** Where it goes: the AMQP routing key or the NATS subject. 1–255 characters. */
  topic: string;
  /**
   * The body. A string is sent as UTF-8, bytes as they are, anything else as JSON (with
   * `content-type: application/json` unless `headers` names one).
   */
  payload: unknown;
  /**
   * The ordering key, 1–255 characters: messages with the same key are published one at a time,
   * in enqueue order. A message that is parked holds back every later message of its key until it
   * is requeued (`outbox.requeue`) or deleted. Messages without a key are published in no
   * particular order. Defaults to none.
   */
  key?: string;
  /** Header names and values sent with the message. Defaults to none (plus the trace context). */
  headers?: Record<string, string>;
}

export interface OutboxOptions {
  /** The outbox table, `table` or `schema.table`; checked when the outbox is made. Defaults to `txbarrier_outbox`. */
  table?: string;
  /**
   * PostgreSQL only: wake listening relays (`postgresListener`) with a NOTIFY, so they publish at
   * once instead of at their next poll. Sent after the commit, coalesced (at most one in flight
   * and one per 20 ms per outbox and process), where the outbox sees the commit: transactions of
   * `outbox.store`, and executors that report their transaction's end (knex, Sequelize). With
   * other executors it is sent inside the transaction, which makes PostgreSQL serialise the
   * commits of notifying transactions. `false`: no NOTIFY, relays in other processes poll.
   * Relays of this outbox object in this process are woken directly either way. Defaults to `true`.
   */
  notify?: boolean;
}

/** One row as `pending()` and `parked()` list it. */
export interface OutboxEntry {
  id: string;
  topic: string;
  key: string | null;
  /** Publish attempts so far (a relay that died mid-publish counts too). */
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  /** When a relay may next try it. */
  availableAt: Date;
}


/**
 * A transactional outbox on one store: messages written by `enqueue` commit or roll back with the
 * business work, and a relay (`createRelay`) publishes the committed ones.
 */
export interface Outbox<Tx, S extends BarrierStore<Tx> = BarrierStore<Tx>> {
  /** The table, as given or defaulted. */
  readonly table: string;
  /**
   * The PostgreSQL channel the outbox notifies on; relays listen on it. The table name, or where
   * that exceeds PostgreSQL's 63 characters for a channel, its first characters, `~` and a hash
   * of the whole name (`keyPart`), so two long names never share a channel.
   */
  readonly channel: string;
  /**
   * The store, with transactions `enqueue(tx, …)` can write into. Pass this one to `barrier.call`
   * and use it for transactions of your own; the relay uses it too. It has the wrapped store's type
   * (a SQLite store keeps its `exclusive`).
   */
  readonly store: S;
  /**
   * Adds a message in an open transaction and resolves to its id (a UUIDv7): the message is
   * published only if that transaction commits. `into` is the `tx` that `outbox.store` handed
   * you (inside `barrier.call`, or `outbox.store.transaction`), or a barrier executor
   * (`knexExecutor(trx)`, `postgresExecutor(client)`, …) for a transaction you opened yourself.
   * Throws `OutboxInputError` on a bad message and `OutboxNotInTransaction` for a tx that is not
   * in an open transaction of this store; neither writes anything.
   */
  enqueue(into: Tx | BarrierExecutor<unknown>, message: OutboxMessage): Promise<string>;
  /** Creates the schema (where named), the table and its indexes if missing. Idempotent. */
  ensureSchema(): Promise<void>;
  /** Messages not yet published (including those waiting for a retry), oldest first. Defaults to 100. */
  pending(options?: { limit?: number }): Promise<OutboxEntry[]>;
  /** Messages that ran out of attempts and wait for a person, oldest first. Defaults to 100. */
  parked(options?: { limit?: number }): Promise<OutboxEntry[]>;
  /** Rows per status. */
  counts(): Promise<Record<OutboxStatus, number>>;
  /** Makes parked messages pending again with a fresh set of attempts; resolves to how many. */
  requeue(ids: readonly string[]): Promise<number>;
  /** Deletes messages sent longer ago than `olderThan` (ms or `'1h'`, `'7d'`), in batches; resolves to how many. */
  prune(options: { olderThan: number | string; batchSize?: number }): Promise<number>;
  /** The SQL this outbox runs, for the relay, the CLI and the DDL files. */
  readonly sql: OutboxSql;
}

/** Bad input to the outbox: a message `enqueue` refused, a limit or a list of ids; nothing was written. */
export class OutboxInputError extends BarrierError {
  constructor(message: string) {
    super(message, { code: 'ERR_TXBARRIER_OUTBOX_INPUT' });
  }
}

/**
 * `enqueue` was given a `tx` that is not inside an open transaction of the outbox's store (the
 * transaction already ended, or it came from another store), or an executor of another engine.
 * Written outside the business transaction, a message could be published for work that rolled back.
 */
export class OutboxNotInTransaction extends BarrierError {
  constructor(message: string) {
    super(message, { code: 'ERR_TXBARRIER_OUTBOX_NOT_IN_TRANSACTION' });
  }
}

export const DEFAULT_OUTBOX_TABLE = 'txbarrier_outbox';
/** PostgreSQL's longest identifier (NAMEDATALEN - 1), which `pg_notify` enforces on a channel name. */
const PG_CHANNEL_WIDTH = 63;
const MAX_TEXT = 255;
// Control characters would make the topic or key unreadable in logs and the CLI, and a NUL ends a C string in the broker.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * An outbox on `store` (any txbarrier store, or one from `defineStore`). The table is separate
 * from the barrier's; create it with `outbox.ensureSchema()` or `sql/outbox-<engine>.sql`.
 */
export function createOutbox<S extends BarrierStore<any>>(store: S, options: OutboxOptions = {}): Outbox<TxOf<S>, S> {
  type Tx = TxOf<S>;
  const { table = DEFAULT_OUTBOX_TABLE } = options;
  const engine = store.dialect.name;
  const sql = outboxSql(engine, table, store.placeholder);
  const notify = engine === 'postgres' && (options.notify ?? true);
  const channel = keyPart(table, 'channel', PG_CHANNEL_WIDTH);
  // The connection of each transaction `outbox.store` has open, by the tx it hands out: what lets
  // `enqueue(tx)` write into exactly that transaction, and refuse once it has ended. The tx is a
  // view of the driver's object made for this transaction alone: a pool lends the same client to
  // the next transaction (and better-sqlite3 has one Database), so the object itself cannot tell
  // an open transaction from one that ended.
  const open = new WeakMap<object, BarrierConnection<Tx>>();
  // The transactions of `open` that enqueued: they wake the relays once committed.
  const enqueuedIn = new WeakSet<BarrierConnection<unknown>>();
  const inserts = new Map<string, string>();
  // Set once the outbox exists: its relays in this process register under it.
  let committed: () => void = () => {};

  const outboxStore: S = {
    ...store,
    transaction: async (work) => {
      let own: BarrierConnection<Tx> | undefined;
      const result = await store.transaction(async (connection) => {
        const tx = transactionView(connection.tx as object) as Tx;
        own = {
          tx,
          execute: (sql, params) => connection.execute(sql, params),
          select: (sql, params) => connection.select(sql, params),
          run: (sql, params) => connection.run(sql, params),
        };
        open.set(tx as object, own);
        try {
          return await work(own);
        } finally {
          open.delete(tx as object);
        }
      });
      // Committed: the last attempt's connection says whether it enqueued (a retried attempt rolled back).
      if (own && enqueuedIn.has(own)) committed();
      return result;
    },
  };

  // Keyed by placeholder style and whether the NOTIFY rides in the insert (an executor whose commit the outbox cannot see).
  const insertFor = (placeholder: Placeholder | undefined, notifyInside: boolean) => {
    const key = `${placeholder ? placeholder(1) : ''}${notifyInside ? ' notify' : ''}`;
    let statement = inserts.get(key);
    if (statement === undefined) inserts.set(key, (statement = outboxSql(engine, table, placeholder ?? store.placeholder).insert(notifyInside)));
    return statement;
  };

  const list = (status: OutboxStatus) => async ({ limit = 100 }: { limit?: number } = {}) => {
    if (!Number.isInteger(limit) || limit < 1) throw new OutboxInputError(`limit must be a positive integer; got ${limit}`);
    const rows = await store.transaction((c) => c.select(sql.list(status), [limit]));
    return rows.map(
      (row): OutboxEntry => ({
        id: String(row.id),
        topic: String(row.topic),
        key: row.msg_key == null ? null : String(row.msg_key),
        attempts: Number(row.attempts),
        lastError: row.last_error == null ? null : String(row.last_error),
        createdAt: new Date(String(row.created_at)),
        availableAt: new Date(String(row.available_at)),
      }),
    );
  };

  const outbox: Outbox<Tx, S> = {
    table,
    channel,
    store: outboxStore,
    sql,

    async enqueue(into, message) {
      const { topic, key, headers, payload } = checkMessage(message);
      const connection = connectionOf(into);
      const id = uuidv7();
      const params = [id, topic, key ?? null, JSON.stringify(withTraceContext(headers)), payload];
      const ownTransaction = open.get(into as object) === connection;
      const seesCommit = ownTransaction || typeof (connection as BarrierExecutor<unknown>).onTransactionEnd === 'function';
      const notifyInside = notify && !seesCommit;
      if (notifyInside) params.push(channel);
      await connection.execute(insertFor(connection.placeholder, notifyInside), params);
      if (ownTransaction) enqueuedIn.add(connection);
      else if (seesCommit) (connection as BarrierExecutor<unknown>).onTransactionEnd!((ok) => ok && committed());
      recordEnqueued(engine);
      return id;
    },

    async ensureSchema() {
      // As the barrier's own ensureSchema: in one transaction under the engine's schema lock where it
      // has one (replicas starting at once race on PostgreSQL's catalogs), else one per statement.
      const lock = store.dialect.schemaLock;
      if (lock) {
        await store.transaction(async (connection) => {
          await connection.run(lock, []);
          for (const statement of sql.createSchema()) await connection.run(statement, []);
        });
      } else {
        for (const statement of sql.createSchema()) await store.transaction((connection) => connection.run(statement, []));
      }
    },

    pending: list('pending'),
    parked: list('parked'),

    async counts() {
      const rows = await store.transaction((c) => c.select(sql.countByStatus(), []));
      const counts: Record<OutboxStatus, number> = { pending: 0, sent: 0, parked: 0 };
      for (const row of rows) counts[row.status as OutboxStatus] = Number(row.n);
      return counts;
    },

    async requeue(ids) {
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) throw new OutboxInputError('requeue expects an array of message ids');
      if (ids.length === 0) return 0;
      return Number(await store.transaction((c) => c.execute(sql.requeue(ids.length), ids)));
    },

    prune: (options) => pruneSent(store, sql, options),
  };
  const notifyStatement = notify ? sql.notify?.() : undefined;
  committed = commitWaker(outbox, notifyStatement ? () => store.transaction((connection) => connection.select(notifyStatement, [channel])) : undefined);
  return outbox;

  function connectionOf(into: unknown): BarrierConnection<unknown> & { placeholder?: Placeholder } {
    if (into !== null && typeof into === 'object') {
      const connection = open.get(into);
      if (connection) return connection;
      if (isExecutor(into)) {
        if (into.dialect.name !== engine) {
          throw new OutboxNotInTransaction(`enqueue: the executor is for ${into.dialect.name}, but this outbox's store is ${engine}`);
        }
        return into;
      }
    }
    throw new OutboxNotInTransaction(
      'enqueue: not inside an open transaction of outbox.store. Pass the tx that outbox.store handed you ' +
        '(run barrier.call on outbox.store, not on the store it wraps), or a barrier executor for a transaction of your own.',
    );
  }
}

/**
 * The driver's object as a new object: the same properties, and its methods called on the object
 * itself (a driver's methods may read private fields), so business code sees no difference.
 */
function transactionView<T extends object>(target: T): T {
  const bound = new Map<PropertyKey, [Function, Function]>();
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      let entry = bound.get(property);
      if (entry?.[0] !== value) bound.set(property, (entry = [value, value.bind(object)]));
      return entry[1];
    },
  });
}

/** The tx a store hands to business code. */
type TxOf<S> = S extends BarrierStore<infer Tx> ? Tx : never;

function isExecutor(value: object): value is BarrierExecutor<unknown> {
  const candidate = value as Partial<BarrierExecutor<unknown>>;
  return (
    typeof candidate.execute === 'function' &&
    typeof candidate.select === 'function' &&
    'tx' in candidate &&
    typeof candidate.dialect?.quoteTable === 'function'
  );
}

/** Validates a message and turns its payload into bytes; throws `OutboxInputError` naming every problem. */
function checkMessage(message: OutboxMessage): { topic: string; key?: string; headers: Record<string, string>; payload: Buffer } {
  if (message === null || typeof message !== 'object') throw new OutboxInputError('enqueue: the message must be an object');
  const problems: string[] = [];
  const text = (name: string, value: unknown) => {
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT || CONTROL.test(value)) {
      problems.push(`${name} must be a string of 1–${MAX_TEXT} characters without control characters; got ${JSON.stringify(value)}`);
    }
  };
  text('topic', message.topic);
  if (message.key !== undefined) text('key', message.key);
  const headers: Record<string, string> = {};
  if (message.headers !== undefined) {
    if (message.headers === null || typeof message.headers !== 'object') problems.push('headers must be an object of strings');
    else
      for (const [name, value] of Object.entries(message.headers)) {
        if (typeof value !== 'string') problems.push(`header ${JSON.stringify(name)} must be a string; got ${typeof value}`);
        else headers[name] = value;
      }
  }
  let payload: Buffer | undefined;
  const body = message.payload;
  if (typeof body === 'string') payload = Buffer.from(body, 'utf8');
  else if (body instanceof Uint8Array) payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  else if (body === undefined) problems.push('payload is missing');
  else {
    let json: string | undefined;
    try {
      json = JSON.stringify(body);
    } catch (error) {
      problems.push(`payload cannot be serialised as JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (json !== undefined) {
      payload = Buffer.from(json, 'utf8');
      if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    } else if (problems.length === 0) problems.push('payload cannot be serialised as JSON');
  }
  if (problems.length > 0) throw new OutboxInputError(`invalid outbox message: ${problems.join('; ')}`);
  return { topic: message.topic, ...(message.key === undefined ? {} : { key: message.key }), headers, payload: payload! };
}

