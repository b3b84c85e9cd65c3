import type { Dialect, DialectName } from './dialect.js';
import { mysqlDialect } from './mysql.js';
import { postgresDialect } from './postgres.js';
import { sqliteDialect } from './sqlite.js';

/** Every engine's dialect by name, for code that learns the engine at run time (a URL, an ORM's configuration). */
export const dialects: Readonly<Record<DialectName, Dialect>> = { mysql: mysqlDialect, postgres: postgresDialect, sqlite: sqliteDialect };
