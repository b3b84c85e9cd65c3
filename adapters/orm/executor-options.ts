import { BarrierConfigError, type BarrierExecutor, type DialectName, defineExecutor, dialects, type StatementRunner, type TargetOptions } from '../../src/index.js';

/** What every ORM executor accepts. */
export interface ExecutorOptions extends TargetOptions {
  /**
   * The engine, when the library's configuration does not say (a custom client, a driver
   * txbarrier does not recognise). Overrides what was detected. Defaults to the detected engine.
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
      throw new BarrierConfigError(`dialect must be one of ${Object.keys(dialects).join(', ')}; got ${JSON.stringify(options.dialect)}`, {
        code: 'ERR_TXBARRIER_ENGINE',
      });
    }
    return options.dialect;
  }
  if (configured !== undefined && Object.hasOwn(known, configured)) return known[configured]!;
  throw new BarrierConfigError(
    `${library}: cannot tell the database engine from ${configured === undefined ? 'its configuration' : JSON.stringify(configured)} ` +
      `(recognised: ${Object.keys(known).join(', ')}). Pass { dialect: 'mysql' | 'postgres' | 'sqlite' } if it speaks one of those.`,
    { code: 'ERR_TXBARRIER_ENGINE' },
  );
}

/** Builds the executor once the engine is known; `placeholder` only where the library rewrites parameters. */
export function ormExecutor<Tx>(
  engine: DialectName,
  options: ExecutorOptions,
  runner: StatementRunner<Tx>,
  extras: Pick<BarrierExecutor<Tx>, 'placeholder' | 'onTransactionEnd'> = {},
): BarrierExecutor<Tx> {
  const { dialect: _engine, ...targetOptions } = options;
  return { ...defineExecutor(dialects[engine], targetOptions, runner), ...extras };
}

/** Whether a statement produces rows (a query, or a statement with RETURNING), for libraries with one call for each. */
export function returnsRows(sql: string): boolean {
  return ROWS.test(sql);
}
const ROWS = /^\s*SELECT\b|\bRETURNING\b/i;

/** The error for an executor given something that is not an open transaction. */
export function notATransaction(library: string, expected: string): BarrierConfigError {
  return new BarrierConfigError(
    `${library}: expected ${expected}. Outside a transaction each statement commits on its own, ` +
      `so the barrier row would survive a business failure and the retry would be skipped as a duplicate.`,
    { code: 'ERR_TXBARRIER_NOT_IN_TRANSACTION' },
  );
}
