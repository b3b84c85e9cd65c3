/**
 * DTM's own Go client on txbarrier's table: the transfer service twice behind one address, once in
 * TypeScript (txbarrier, Express) and once in Go (github.com/dtm-labs/client's dtmcli barrier:
 * BarrierFromQuery … CallWithDB, QueryPrepared; servers/go/dtm-transfer), the proxy sending DTM's
 * deliveries to each in turn, so a retry, a duplicate, a compensation or a late action lands on the
 * other language than the delivery before it. Every case of the DTM suite runs, on MariaDB and
 * PostgreSQL, on txbarrier's table layout and on DTM's own DDL (NULL timestamps on PostgreSQL); the
 * ledger check proves each op applied exactly once whichever language ran it.
 *
 * The same over gRPC (dtmgrpc's barrier: BarrierFromGrpc … CallWithDB): saga and TCC, committing
 * and failing, each branch's compensation, confirmation or cancellation served by the other
 * language than its action or try.
 */
import { startService } from '../../../src/testing/index.js';
import { MYSQL_URL, POSTGRES_URL } from '../../../servers/index.js';
import { dtmTransferBinary } from '../../../servers/dtm.js';
import type { BankConfig } from '../../../chaos/bank.js';
import { CASES, describeGroup, GRPC_CASES } from './cases.js';
import type { TransferService } from './services.js';

/**
 * The Go driver's DSN for the suite's database: go-sql-driver/mysql's own form, lib/pq takes the
 * URL. `clientFoundRows`: the bank reads an UPDATE's count as rows matched, as mysql2 reports it;
 * go-sql-driver counts rows changed by default, 0 for a confirm's `balance + 0`.
 */
function goDsn(engine: 'mysql' | 'postgres'): string {
  if (engine === 'postgres') {
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('sslmode', 'disable');
    return url.href;
  }
  const url = new URL(MYSQL_URL);
  const user = decodeURIComponent(url.username) + (url.password ? `:${decodeURIComponent(url.password)}` : '');
  return `${user}@tcp(${url.hostname}:${url.port || 3306})${url.pathname}?clientFoundRows=true`;
}

async function startGoReplica(config: BankConfig, transport: 'http' | 'grpc'): Promise<TransferService> {
  const engine = config.engine as 'mysql' | 'postgres';
  const service = await startService({
    command: await dtmTransferBinary(),
    env: {
      DB_DRIVER: engine,
      DB_DSN: goDsn(engine),
      BANK_PREFIX: config.prefix,
      BARRIER_TABLE: config.barrierTable ?? `${config.prefix}_barrier`,
      ...(transport === 'grpc' ? { GRPC: '1' } : {}),
    },
  });
  // DTM's gRPC branch URL is host:port/<service>/<method>; test/grpc-chaos-service.ts's method.
  const branchUrl = (base: string, branchId: string, op: string) =>
    transport === 'grpc' ? `${base.replace(/^http:\/\//, '')}/txbarrier.test.JsonNotes/Transfer` : `${base}/transfer/${branchId}/${op}`;
  return { ...service, crash: () => service.crash(), stop: () => service.stop(), branchUrl };
}

for (const engine of ['mysql', 'postgres'] as const) {
  for (const shape of ['ours', 'dtm'] as const) {
    describeGroup(`Go (dtmcli) and TypeScript replicas on ${engine}, ${shape === 'ours' ? "txbarrier's" : "DTM's own"} table`, {
      engine,
      front: 'express',
      cases: Object.keys(CASES),
      withCrash: true,
      goReplica: { start: (config) => startGoReplica(config, 'http'), shape },
    });
    describeGroup(`Go (dtmgrpc) and TypeScript gRPC services on ${engine}, ${shape === 'ours' ? "txbarrier's" : "DTM's own"} table`, {
      engine,
      front: 'grpc',
      cases: GRPC_CASES,
      withCrash: false,
      goReplica: { start: (config) => startGoReplica(config, 'grpc'), shape },
    });
  }
}
