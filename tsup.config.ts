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
  fastify: 'adapters/fastify.ts',
  hono: 'adapters/hono.ts',
  koa: 'adapters/koa.ts',
  nestjs: 'adapters/nestjs.ts',
  grpc: 'adapters/grpc.ts',
  knex: 'adapters/knex.ts',
  kysely: 'adapters/kysely.ts',
  drizzle: 'adapters/drizzle.ts',
  typeorm: 'adapters/typeorm.ts',
  sequelize: 'adapters/sequelize.ts',
  'postgres-js': 'adapters/postgres-js.ts',
  prisma: 'adapters/prisma.ts',
  'mikro-orm': 'adapters/mikro-orm.ts',
  idempotency: 'adapters/idempotency/index.ts',
  'idempotency/express': 'adapters/idempotency/express.ts',
  'idempotency/fastify': 'adapters/idempotency/fastify.ts',
  'idempotency/hono': 'adapters/idempotency/hono.ts',
  'idempotency/koa': 'adapters/idempotency/koa.ts',
  outbox: 'src/outbox.ts',
  'outbox/amqp': 'adapters/outbox/amqp.ts',
  'outbox/nats': 'adapters/outbox/nats.ts',
  'outbox/postgres': 'adapters/outbox/postgres.ts',
  amqp: 'adapters/amqp.ts',
  nats: 'adapters/nats.ts',
  bullmq: 'adapters/bullmq.ts',
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
  // `import.meta.url` in the CommonJS build (txbarrier/nestjs loads Nest with createRequire on first use).
  shims: true,
});
