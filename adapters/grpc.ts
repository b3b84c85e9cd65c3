/**
 * `txbarrier/grpc`: DTM's protocol for `@grpc/grpc-js` unary handlers. The barrier comes from the
 * call's `dtm-gid`, `dtm-trans_type`, `dtm-branch_id` and `dtm-op` metadata, as DTM's gRPC
 * transport sends it; how the branch ended goes back as the status code DTM's gRPC client reads.
 * Works for services loaded from `.proto` files (`@grpc/proto-loader`) and for a hand-written
 * service definition alike: a handler is a handler.
 */
import type { handleUnaryCall, Metadata, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { Barrier, BarrierStore } from '../src/index.js';
import {
  barrierOf,
  checkBackBarrierOf,
  type DtmResult,
  type FrontOptions,
  reportError,
  type RequestParts,
  runBranch,
  runCheckBack,
  type Verdict,
} from '../src/protocol/dtm.js';

/**
 * The gRPC status of each verdict. DTM reads a branch's gRPC error with `GrpcError2DtmError`
 * (dtm-labs/dtm, `dtmgrpc/type.go`; its server calls it from `getGrpcResult` in
 * `dtmsvr/trans_status.go`): `Aborted` is FAILURE (unless its message is exactly `ONGOING`, the
 * spelling of DTM before 1.10), `FailedPrecondition` is ONGOING, and any other error is retried
 * with backoff. `DtmError2GrpcError` in the same file is the reverse mapping DTM's own Go handlers use.
 */
export const GRPC_STATUS = {
  SUCCESS: 0, // OK
  FAILURE: 10, // ABORTED
  ONGOING: 9, // FAILED_PRECONDITION
  INVALID: 3, // INVALID_ARGUMENT
  ERROR: 13, // INTERNAL
} as const satisfies Record<Verdict['result'], number>;

/** The trailer naming the barrier's outcome (`applied`, `duplicate`, …) on every success. */
export const OUTCOME_TRAILER = 'txbarrier-outcome';

/** Any grpc-js unary call, whatever its message types. */
export type UnaryCall<Req = unknown> = ServerUnaryCall<Req, unknown>;

/** What a `barrierHandler` handler receives: grpc-js's call, with the barrier it runs under. */
export type BarrierCall<Req, Res> = ServerUnaryCall<Req, Res> & { barrier: Barrier };

/**
 * `extract` and `onError`, as on every front (see `FrontOptions`), given the call. `onError`
 * defaults to the store's logger (`error` level), else a process warning (`TxbarrierWarning`).
 */
export type BarrierOptions = FrontOptions<UnaryCall>;

/** DTM's reading: the `dtm-*` metadata of the call. */
export const dtmExtractor = (call: UnaryCall): Barrier => barrierOf(partsOf(call));

/**
 * A grpc-js unary handler that runs `handler` under the call's barrier and answers as DTM reads
 * it: `OK` with the handler's reply when applied, `OK` with an empty reply for every suppressed
 * outcome (the `txbarrier-outcome` trailer says which), `ABORTED` for `BarrierFailure` (its
 * message in the details), `FAILED_PRECONDITION` for `BarrierOngoing` and for a database conflict
 * from the handler's own SQL (a retry resolves it), `INVALID_ARGUMENT` naming each bad field, and
 * `INTERNAL` for anything else (reported, see `onError`; no stack or SQL in the details).
 */
export function barrierHandler<Tx, Req, Res>(
  store: BarrierStore<Tx>,
  handler: (tx: Tx, call: BarrierCall<Req, Res>) => Promise<Res> | Res,
  options: BarrierOptions = {},
): handleUnaryCall<Req, Res> {
  const extract = options.extract ?? dtmExtractor;
  return (call, callback) => {
    const withBarrier = call as BarrierCall<Req, Res>;
    void runBranch(store, () => (withBarrier.barrier = extract(call)), (tx) => handler(tx, withBarrier)).then((verdict) =>
      answer(call, callback, verdict, options, store),
    );
  };
}

/**
 * The 2-phase message check-back (DTM's `QueryPrepared` for a gRPC message): `OK` if the local
 * transaction of the `dtm-gid` message committed, `ABORTED` if it rolled back (or never ran, and
 * now never will), `FAILED_PRECONDITION` if the database could not tell in time. Takes DTM's four
 * fields (`trans_type` `msg`) or a `dtm-gid` alone. Replies with an empty message (DTM's
 * `google.protobuf.Empty`).
 */
export function queryPreparedHandler<Req, Res>(store: BarrierStore<unknown>, options: Pick<BarrierOptions, 'onError'> = {}): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    void runCheckBack(store, () => checkBackBarrierOf(partsOf(call))).then((verdict) => answer(call, callback, verdict, options, store));
  };
}

function answer<Res>(call: UnaryCall, callback: sendUnaryData<Res>, verdict: Verdict, options: BarrierOptions, store: BarrierStore<unknown>): void {
  const code = GRPC_STATUS[verdict.result];
  switch (verdict.result) {
    case 'SUCCESS': {
      const { outcome, value } = verdict.fields as { outcome?: string; value?: Res };
      const trailer = emptyMetadata(call);
      if (outcome) trailer.set(OUTCOME_TRAILER, outcome);
      return callback(null, value ?? ({} as Res), trailer);
    }
    case 'INVALID':
      return callback({ code, details: `invalid barrier request: ${verdict.fields.problems.map((p) => `${p.field} ${p.problem}`).join('; ')}` });
    case 'ERROR':
      reportError(verdict.error, call, options.onError, store.hooks.logger);
      return callback({ code, details: verdict.fields.error });
    default:
      return callback({ code, details: detailsOf(verdict.result, verdict.fields) });
  }
}

/**
 * The details of a FAILURE or ONGOING status: the failure's message, never the bare word
 * `ONGOING`, which DTM before 1.10 read as ONGOING even under `ABORTED`.
 */
function detailsOf(result: Exclude<DtmResult, 'SUCCESS'>, fields: Readonly<Record<string, unknown>>): string {
  if (result === 'ONGOING') return 'ONGOING';
  const message = typeof fields.message === 'string' && fields.message !== '' ? fields.message : 'FAILURE';
  return message.trim() === 'ONGOING' ? `FAILURE: ${message}` : message;
}

/**
 * A new, empty `Metadata` of the call's own grpc-js: this module imports no grpc-js code, so two
 * copies of it in one app never mix.
 */
function emptyMetadata(call: UnaryCall): Metadata {
  return new (call.metadata.constructor as new () => Metadata)();
}

/**
 * The call's metadata as headers: one value a string, a repeated key a list (which the reader
 * refuses as repeated). gRPC has no query string.
 */
function partsOf(call: UnaryCall): RequestParts {
  const headers: Record<string, unknown> = {};
  for (const [name, values] of Object.entries(call.metadata.toJSON())) headers[name] = values.length === 1 ? values[0] : values;
  return { query: '', headers };
}
