import { BarrierConfigError } from '../errors.js';

/** A transaction isolation level, spelled as both MySQL and PostgreSQL accept it. */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

const LEVELS: readonly string[] = ['read committed', 'repeatable read', 'serializable'] satisfies IsolationLevel[];

/**
 * The level as SQL (`READ COMMITTED`), or undefined for the server's default. Checked when the
 * store is made: the text goes into a statement, so only the known levels pass.
 */
export function isolationSql(level: IsolationLevel | undefined): string | undefined {
  if (level === undefined) return undefined;
  if (!LEVELS.includes(level)) {
    throw new BarrierConfigError(`isolationLevel must be one of ${LEVELS.join(', ')}; got ${JSON.stringify(level)}`);
  }
  return level.toUpperCase();
}
