import { peerSuite } from '../suite.js';

/**
 * `npm run test:postgres-18`: the PostgreSQL suites of `npm test` again, on PostgreSQL 18, which
 * servers/postgres.ts starts and names in TXBARRIER_POSTGRES_URL for this run; TXBARRIER_ENGINES
 * leaves the SQLite and MariaDB tests of those files undefined. This folder's own tests check the
 * server is 18 and what differs there.
 */
export default peerSuite('postgres-18', {
  test: {
    include: [
      // The stores (pg, postgres.js: conformance on both table layouts, races, executors, bounds).
      'test/stores/postgres.test.ts',
      'test/stores/postgres-races.test.ts',
      'test/stores/postgres-js.test.ts',
      'test/barrier/message.test.ts',
      'test/barrier/prune.test.ts',
      'test/barrier/server-bounds.test.ts',
      // The outbox (enqueue, relay, LISTEN/NOTIFY) and idempotency keys (the draft's cases through
      // Express; the other fronts send the same SQL, and would double the suite's time).
      'test/outbox/outbox.test.ts',
      'test/outbox/relay.test.ts',
      'test/idempotency/keys.test.ts',
      'test/idempotency/express.test.ts',
    ],
    env: { TXBARRIER_ENGINES: 'postgres' },
  },
});
