import { existsSync } from 'node:fs';
import { defineConfig } from 'tsup';

/** One entry per subpath export (`txbarrier/<name>`); test/package.test.ts checks each one resolves. */
const sources: Record<string, string> = {
  index: 'src/index.ts',
  testing: 'src/testing/index.ts',
  cli: 'bin/txbarrier.ts',
  url: 'adapters/url.ts',
  sqlite: 'adapters/sqlite.ts',
  'node-sqlite': 'adapters/node-sqlite.ts',
  mysql: 'adapters/mysql.ts',
  postgres: 'adapters/postgres.ts',
  express: 'adapters/express.ts',
  knex: 'adapters/knex.ts',
  kysely: 'adapters/kysely.ts',
  drizzle: 'adapters/drizzle.ts',
  typeorm: 'adapters/typeorm.ts',
  sequelize: 'adapters/sequelize.ts',
};

// Every entry shares one copy of the core (splitting), so `instanceof BarrierFailure` holds across
// `txbarrier` and `txbarrier/express` in each module format.
export default defineConfig({
  entry: Object.fromEntries(Object.entries(sources).filter(([, path]) => existsSync(path))),
  format: ['esm', 'cjs'],
  dts: true,
  splitting: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
