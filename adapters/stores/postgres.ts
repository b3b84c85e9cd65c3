import {
  BarrierConfigError,
  type BarrierExecutor,
  type BarrierStore,
  defineExecutor,
  defineStore,
  postgresDialect,
  type Row,
  type StatementRunner,
  type StoreOptions,
  type TargetOptions,
  type TransactionDriver,
} from '../../src/index.js';
import { type IsolationLevel, isolationSql } from '../../src/transaction/isolation.js';

export type { IsolationLevel };

/** What pg's `query` resolves to, as far as the barrier reads it. */
export interface PostgresResult {
  command: string;
  rowCount: number | null;
  rows: Row[];
}

/** The part of a pg `Client`/`PoolClient` the barrier uses (the driver is never imported here). */
export interface PostgresQueryable {
  query(sql: string, values?: readonly unknown[]): Promise<PostgresResult>;
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
  /** Run each barrier transaction at this level instead of the server's. Defaults to the server's (PostgreSQL: read committed). */
  isolationLevel?: IsolationLevel;
}

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
  return defineStore(postgresDialect, storeOptions, (settings): TransactionDriver<ClientOf<Pool>, ClientOf<Pool>> => {
    // BEGIN and its SET LOCALs in one round trip (pg sends a parameterless query as one simple query).
    const begin = postgresDialect.beginStatements(settings).transaction.join('; ');
    return {
      // Reactions, not async frames: each step costs one promise beyond the driver's own.
      acquire: () => pool.connect().then(lent) as Promise<ClientOf<Pool>>,
      begin: (client) => client.query(begin).then(nothing),
      commit: (client) => client.query('COMMIT').then(committed),
      rollback: async (client) => void (await client.query('ROLLBACK')),
      release: (client) => client.release(),
      destroy: (client) => client.release(watch(client).lost ?? true),
      runner: (client) => postgresRunner(client),
      usable: (client) => watch(client).lost === undefined,
    };
  }, { isolationLevel: isolationSql(isolationLevel) });
}

const watched = new WeakMap<object, { lost?: Error }>();

/** A client just taken from the pool: nothing lost yet. */
function lent<Client extends PostgresPoolClient>(client: Client): Client {
  watch(client).lost = undefined;
  return client;
}

const nothing = (): void => undefined;

/** PostgreSQL answers COMMIT on an aborted transaction with a successful ROLLBACK. */
const committed = (result: PostgresResult): boolean => result.command !== 'ROLLBACK';

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
  return health;
}

/**
 * A barrier executor over a pg client the caller already put in a transaction, for
 * `barrier.within`. It never commits or rolls back. Default table `dtm_barrier.barrier`.
 */
export function postgresExecutor<C extends PostgresQueryable>(client: C, options: TargetOptions = {}): BarrierExecutor<C> {
  // pg tracks the server's transaction status: 'I' idle, 'T' in a transaction, 'E' failed.
  if (client.getTransactionStatus?.() === 'I') {
    throw new BarrierConfigError(
      'postgresExecutor: the client is not in a transaction (BEGIN first). In autocommit the barrier row ' +
        'commits on its own and survives a business failure, so the retry would be skipped as a duplicate.',
      { code: 'ERR_TXBARRIER_NOT_IN_TRANSACTION' },
    );
  }
  return defineExecutor(postgresDialect, options, postgresRunner(client));
}

function postgresRunner<C extends PostgresQueryable>(client: C): StatementRunner<C, PostgresResult> {
  return {
    tx: client,
    query: (sql, params) => client.query(sql, params),
    affectedRows: (result) => result.rowCount,
    rows: (result) => result.rows,
  };
}
