import { defineExecutor } from '../src/executor.js';
import {
  BarrierConfigError,
  type BarrierConnection,
  type BarrierExecutor,
  type BarrierStore,
  defineStore,
  postgresDialect,
  type Row,
  type StoreOptions,
  BarrierTransactionAborted,
} from '../src/index.js';
import { type IsolationLevel, isolationSql } from '../src/isolation.js';

export type { IsolationLevel };

/** The part of a pg `Client`/`PoolClient` the barrier uses (the driver is never imported here). */
export interface PostgresQueryable {
  query(sql: string, values?: readonly unknown[]): Promise<{ command: string; rowCount: number | null; rows: Row[] }>;
  /** pg ≥ 8.12: 'I' idle, 'T' in a transaction, 'E' in a failed one. */
  getTransactionStatus?(): string | null;
}

/** A pg `PoolClient`. */
export interface PostgresPoolClient extends PostgresQueryable {
  /** A truthy argument destroys the client instead of pooling it. */
  release(destroy?: Error | boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** A pg `Pool`. */
export interface PostgresPool {
  connect(): Promise<PostgresPoolClient>;
}

export interface PostgresStoreOptions extends StoreOptions {
  /** Run each barrier transaction at this level instead of the server's (PostgreSQL: read committed). */
  isolationLevel?: IsolationLevel;
}

/** The advisory lock `ensureSchema` holds: 'txbarrie' in ASCII, an arbitrary number unlikely to be anyone else's. */
const SCHEMA_LOCK = '8392566076276369765';

/** The client type a pool lends. pg's `connect` is overloaded (promise, then callback), and `ReturnType` would read the callback's `void`. */
type ClientOf<Pool extends PostgresPool> = Pool extends { connect(): Promise<infer Client>; connect(callback: never): void }
  ? unknown extends Client
    ? Awaited<ReturnType<Pool['connect']>>
    : Client
  : never;

/**
 * A barrier store on a pg `Pool`. Default table `dtm_barrier.barrier`, DTM's own.
 * Business code receives the pool client inside the open transaction.
 */
export function postgresStore<Pool extends PostgresPool>(pool: Pool, options: PostgresStoreOptions = {}): BarrierStore<ClientOf<Pool>> {
  const { isolationLevel, ...storeOptions } = options;
  const level = isolationSql(isolationLevel);
  const begin = level ? `BEGIN ISOLATION LEVEL ${level}` : 'BEGIN';

  const store = defineStore<ClientOf<Pool>>(postgresDialect, storeOptions, async (work) => {
    const client = (await pool.connect()) as ClientOf<Pool>;
    const health = watch(client);
    // Only a client whose COMMIT or ROLLBACK answered goes back to the pool.
    let reusable = false;
    try {
      await client.query(begin);
      let result;
      try {
        result = await work(postgresConnection(client));
      } catch (error) {
        // A failed ROLLBACK must not replace the error being thrown.
        reusable = await client.query('ROLLBACK').then(() => true, () => false);
        throw error;
      }
      const commit = await client.query('COMMIT');
      reusable = true;
      if (commit.command === 'ROLLBACK') {
        // PostgreSQL answers COMMIT on an aborted transaction with a successful ROLLBACK.
        throw new BarrierTransactionAborted();
      }
      return result;
    } finally {
      client.release(health.lost ?? !reusable);
    }
  });

  return {
    ...store,
    // Concurrent CREATE ... IF NOT EXISTS of one schema or table fail on PostgreSQL's catalogs
    // (23505), as when several replicas start at once; under one advisory lock they take turns.
    // PostgreSQL's DDL is transactional, so one transaction holds the lock over every statement.
    ensureSchema: () =>
      store.transaction(async (connection) => {
        await connection.select(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`, []);
        for (const statement of postgresDialect.createSchema(store.table)) await connection.execute(statement, []);
      }),
  };
}

const watched = new WeakMap<object, { lost?: Error }>();

/**
 * pg-pool stops listening for errors on a client it lends out, and an unheard 'error' (the server
 * ended the session while business code awaited something else) would crash the process. One
 * listener per client for its whole life, rather than on/off per transaction on the hot path.
 */
function watch(client: PostgresPoolClient): { lost?: Error } {
  let health = watched.get(client);
  if (!health) {
    const fresh: { lost?: Error } = {};
    client.on('error', (error) => {
      fresh.lost = error;
    });
    watched.set(client, (health = fresh));
  }
  health.lost = undefined;
  return health;
}

/**
 * A barrier executor over a pg client the caller already put in a transaction, for
 * `barrier.within`. It never commits or rolls back. Default table `dtm_barrier.barrier`.
 */
export function postgresExecutor<C extends PostgresQueryable>(client: C, options: StoreOptions = {}): BarrierExecutor<C> {
  // pg tracks the server's transaction status: 'I' idle, 'T' in a transaction, 'E' failed.
  if (client.getTransactionStatus?.() === 'I') {
    throw new BarrierConfigError(
      'postgresExecutor: the client is not in a transaction (BEGIN first). In autocommit the barrier row ' +
        'commits on its own and survives a business failure, so the retry would be skipped as a duplicate.',
    );
  }
  return defineExecutor(postgresDialect, options, postgresConnection(client));
}

function postgresConnection<C extends PostgresQueryable>(client: C): BarrierConnection<C> {
  return {
    tx: client,
    execute: async (sql, params) => (await client.query(sql, params)).rowCount ?? 0,
    select: async (sql, params) => (await client.query(sql, params)).rows,
  };
}
