import { existsSync } from 'node:fs';
import { defineConfig } from 'tsup';

/** One entry per subpath export (`txbarrier/<name>`); test/project/package.test.ts checks each one resolves. */
const sources: Record<string, string> = {
  index: 'src/index.ts',
  testing: 'src/testing/index.ts',
  cli: 'bin/txbarrier.ts',
  url: 'adapters/url.ts',
  sqlite: 'adapters/stores/sqlite.ts',
  'node-sqlite': 'adapters/stores/node-sqlite.ts',
  'bun-sqlite': 'adapters/stores/bun-sqlite.ts',
  mysql: 'adapters/stores/mysql.ts',
  postgres: 'adapters/stores/postgres.ts',
  express: 'adapters/http/express/barrier.ts',
  fastify: 'adapters/http/fastify/barrier.ts',
  hono: 'adapters/http/hono/barrier.ts',
  koa: 'adapters/http/koa/barrier.ts',
  nestjs: 'adapters/http/nestjs/barrier.ts',
  grpc: 'adapters/grpc.ts',
  knex: 'adapters/orm/knex.ts',
  kysely: 'adapters/orm/kysely.ts',
  drizzle: 'adapters/orm/drizzle.ts',
  typeorm: 'adapters/orm/typeorm.ts',
  sequelize: 'adapters/orm/sequelize.ts',
  'postgres-js': 'adapters/stores/postgres-js.ts',
  pglite: 'adapters/stores/pglite.ts',
  prisma: 'adapters/orm/prisma.ts',
  'mikro-orm': 'adapters/orm/mikro-orm.ts',
  idempotency: 'src/idempotency/index.ts',
  'idempotency/express': 'adapters/http/express/idempotency.ts',
  'idempotency/fastify': 'adapters/http/fastify/idempotency.ts',
  'idempotency/hono': 'adapters/http/hono/idempotency.ts',
  'idempotency/koa': 'adapters/http/koa/idempotency.ts',
  outbox: 'src/messaging/outbox/index.ts',
  'outbox/amqp': 'adapters/brokers/amqp/publisher.ts',
  'outbox/nats': 'adapters/brokers/nats/publisher.ts',
  'outbox/postgres': 'adapters/stores/postgres-listener.ts',
  amqp: 'adapters/brokers/amqp/consumer.ts',
  nats: 'adapters/brokers/nats/consumer.ts',
  bullmq: 'adapters/brokers/bullmq/consumer.ts',
  temporal: 'adapters/engines/temporal.ts',
  restate: 'adapters/engines/restate.ts',
  kafka: 'adapters/brokers/kafka/consumer.ts',
  'outbox/kafka': 'adapters/brokers/kafka/publisher.ts',
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
