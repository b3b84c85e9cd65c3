/**
 * `barrierHandler` against the same unary handler written by hand (same SQL, same statuses), over
 * gRPC on loopback: interleaved rounds, every call a new saga action, concurrent client loops.
 * Client and server share this process, so both variants pay the same client cost.
 *
 *   tsx bench/grpc.ts [sqlite|mysql|postgres] [rounds] [seconds per round]
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { barrierHandler } from '../adapters/grpc.js';
import { ACCOUNTS, type EngineName, ENGINES, type Transfer } from './engine.js';
import { handOp } from './hand-barrier.js';
import { connect } from './worker-common.js';
import { quantile, spread } from './rounds.js';
import { MYSQL_URL, POSTGRES_URL } from '../servers/index.js';
import { openEngine } from './engines.js';

const [engineName = 'sqlite', roundsArg = '6', secondsArg = '2'] = process.argv.slice(2) as [EngineName?, string?, string?];
if (!ENGINES.includes(engineName)) throw new Error(`usage: grpc.ts [${ENGINES.join('|')}] [rounds] [seconds]`);
const ROUNDS = Number(roundsArg);
const SECONDS = Number(secondsArg);
const CLIENTS = 16;
const VARIANTS = ['sdk', 'hand'] as const;
type Variant = (typeof VARIANTS)[number];

const engine = await openEngine(engineName, { prefix: `bench_grpc_${process.pid}_` });
const TABLE = `${engine.prefix}barrier`;
await engine.createBarrierTable(TABLE, 'default');
const store = engine.store(TABLE);

interface Payment {
  account: number;
  amount: number;
}
const transfersOf = ({ account, amount }: Payment): Transfer[] => [{ account, amount }];

const json = {
  requestStream: false,
  responseStream: false,
  requestSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  requestDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as Payment,
  responseSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  responseDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as unknown,
};
const service: grpc.ServiceDefinition = { sdk: { path: '/bench.Bank/Sdk', ...json }, hand: { path: '/bench.Bank/Hand', ...json } };

// The hand-written side: the same statements as the SDK's, on a raw driver of its own (bench/hand-barrier.ts).
const handDriver = await connect({
  engine: engineName,
  accounts: `${engine.prefix}accounts`,
  target: engineName === 'sqlite' ? engine.file! : engineName === 'mysql' ? MYSQL_URL : POSTGRES_URL,
});
const handAction = handOp(handDriver, { table: TABLE, op: 'action' });

const server = new grpc.Server();
server.addService(service, {
  sdk: barrierHandler(store, async (tx, call: grpc.ServerUnaryCall<Payment, unknown>) => {
    await engine.business(tx, transfersOf(call.request));
    return { account: call.request.account };
  }),
  // The benchmark sends saga actions of branch 01, which is all this hand-written handler handles.
  hand: (call: grpc.ServerUnaryCall<Payment, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const [gid, transType, branchId, op] = ['gid', 'trans_type', 'branch_id', 'op'].map((name) => call.metadata.get(`dtm-${name}`)[0]);
    if (typeof gid !== 'string' || transType !== 'saga' || branchId !== '01' || op !== 'action') {
      return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'invalid barrier request' });
    }
    handAction(gid, call.request.account, call.request.amount).then(
      (conflict) => {
        if (conflict) return callback({ code: grpc.status.FAILED_PRECONDITION, details: 'ONGOING' });
        const trailer = new grpc.Metadata();
        trailer.set('txbarrier-outcome', 'applied');
        callback(null, { account: call.request.account }, trailer);
      },
      (error: unknown) =>
        callback({ code: store.dialect.isRetryable(error) ? grpc.status.FAILED_PRECONDITION : grpc.status.INTERNAL, details: 'error' }),
    );
  },
});
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
);
const client = new (grpc.makeGenericClientConstructor(service, 'Bank'))(`127.0.0.1:${port}`, grpc.credentials.createInsecure());

function call(variant: Variant): Promise<void> {
  const metadata = new grpc.Metadata();
  for (const [name, value] of Object.entries({ gid: randomUUID(), trans_type: 'saga', branch_id: '01', op: 'action' })) {
    metadata.set(`dtm-${name}`, value);
  }
  const payment: Payment = { account: 1 + Math.floor(Math.random() * ACCOUNTS), amount: 1 };
  return new Promise((resolve, reject) => {
    (client as unknown as Record<Variant, Function>)[variant](payment, metadata, (error: grpc.ServiceError | null) =>
      // Anything but OK would be a cheaper answer and flatter the handler.
      error ? reject(new Error(`${variant}: ${error.code} ${error.details}`)) : resolve(),
    );
  });
}

async function round(variant: Variant, seconds: number): Promise<{ rate: number; p99: number }> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const sent = performance.now();
        await call(variant);
        latencies.push(performance.now() - sent);
      }
    }),
  );
  return { rate: latencies.length / ((performance.now() - start) / 1000), p99: quantile(latencies, 0.99) };
}

try {
  for (const variant of VARIANTS) await round(variant, Math.min(1, SECONDS)); // warm-up
  const results: Record<Variant, { rate: number; p99: number }[]> = { sdk: [], hand: [] };
  for (let index = 0; index < ROUNDS; index++) {
    for (const variant of index % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) results[variant].push(await round(variant, SECONDS));
  }
  const ratioOf = (field: 'rate' | 'p99') => spread(results.sdk.map((sdk, i) => sdk[field] / results.hand[i]![field]));
  const show = ({ median, low, high }: { median: number; low: number; high: number }) => `${median.toFixed(3)} (IQR ${low.toFixed(3)}–${high.toFixed(3)})`;
  const median = (variant: Variant, field: 'rate' | 'p99') => quantile(results[variant].map((r) => r[field]), 0.5).toFixed(field === 'rate' ? 0 : 2);
  console.log(`gRPC on ${engineName}, ${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s`);
  console.log(`  calls/s: sdk ${median('sdk', 'rate')}, hand ${median('hand', 'rate')}; sdk/hand ${show(ratioOf('rate'))}`);
  console.log(`  p99 ms:  sdk ${median('sdk', 'p99')}, hand ${median('hand', 'p99')}; sdk/hand ${show(ratioOf('p99'))}`);
} finally {
  client.close();
  server.forceShutdown();
  await engine.dropTable(TABLE);
  await handDriver.close();
  await engine.close();
}
