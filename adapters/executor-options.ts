import type { Placeholder } from '../src/dialects/dialect.js';
import { defineExecutor } from '../src/executor.js';
import {
  BarrierConfigError,
  type BarrierConnection,
  type BarrierExecutor,
  type DialectName,
  dialects,
  type StoreOptions,
} from '../src/index.js';

/** What every ORM executor accepts. */
export interface ExecutorOptions extends StoreOptions {
  /**
   * The engine, when the library's configuration does not say (a custom client, a driver
   * txbarrier does not recognise). Overrides what was detected.
   */
  dialect?: DialectName;
}


/**
 * The engine: the `dialect` option if given, else what the library's own configuration names,
 * looked up in `known` (that library's names for the engines whose results the executor reads).
 */
export function engineOf(
  library: string,
  configured: string | undefined,
  known: Readonly<Record<string, DialectName>>,
  options: ExecutorOptions,
): DialectName {
  if (options.dialect !== undefined) {
    if (!Object.hasOwn(dialects, options.dialect)) {
      throw new BarrierConfigError(`dialect must be one of ${Object.keys(dialects).join(', ')}; got ${JSON.stringify(options.dialect)}`);
    }
    return options.dialect;
  }
  if (configured !== undefined && Object.hasOwn(known, configured)) return known[configured]!;
  throw new BarrierConfigError(
    `${library}: cannot tell the database engine from ${configured === undefined ? 'its configuration' : JSON.stringify(configured)} ` +
      `(recognised: ${Object.keys(known).join(', ')}). Pass { dialect: 'mysql' | 'postgres' | 'sqlite' } if it speaks one of those.`,
  );
}

/** Builds the executor once the engine is known; `placeholder` only where the library rewrites parameters. */
export function ormExecutor<Tx>(
  engine: DialectName,
  options: ExecutorOptions,
  connection: BarrierConnection<Tx>,
  placeholder?: Placeholder,
): BarrierExecutor<Tx> {
  const { dialect: _engine, ...storeOptions } = options;
  const executor = defineExecutor(dialects[engine], storeOptions, connection);
  return placeholder ? { ...executor, placeholder } : executor;
}

/**
 * The affected-row count a library reported. Anything else is refused: reading a missing count as 0
 * would report every first request as a duplicate and silently skip its business work.
 */
export function affectedRows(count: unknown, library: string, engine: DialectName): number {
  const value = typeof count === 'bigint' ? Number(count) : count;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  throw new BarrierConfigError(
    `${library} on ${engine} returned no affected-row count (got ${typeof count}); ` +
      `this driver is not one txbarrier supports for ${library}`,
  );
}

/** The error for an executor given something that is not an open transaction. */
export function notATransaction(library: string, expected: string): BarrierConfigError {
  return new BarrierConfigError(
    `${library}: expected ${expected}. Outside a transaction each statement commits on its own, ` +
      `so the barrier row would survive a business failure and the retry would be skipped as a duplicate.`,
  );
}
