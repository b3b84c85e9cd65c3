export { Barrier, type BarrierResult } from './barrier/barrier.js';
export {
  BarrierConfigError,
  BarrierDuplicateMessage,
  BarrierError,
  BarrierFailure,
  BarrierInputError,
  BarrierOngoing,
  BarrierTimeout,
  BarrierTransactionAborted,
  type FieldProblem,
} from './errors.js';
export {
  COMPENSATION_TABLE,
  type CompensationRows,
  decideCompensation,
  decideForward,
  FORWARD_TABLE,
  ORIGIN_OF,
} from './barrier/decision.js';
export { type BarrierFields, type Op, OPS_BY_TRANS_TYPE, type TransType } from './barrier/fields.js';
export { compositeKey, KEY_COLUMN_WIDTH, keyPart } from './barrier/key.js';
export type { BarrierHooks, Logger, Outcome, OutcomeEvent } from './observe/hooks.js';
export type { OtelMeterProvider } from './observe/metrics.js';
export {
  type MetricsResponse,
  PROMETHEUS_CONTENT_TYPE,
  prometheusText,
  type TableMetrics,
  tableMetrics,
  type TableMetricsOptions,
  type TableReading,
} from './observe/tables.js';
export type {
  BarrierConnection,
  BarrierExecutor,
  BarrierStore,
  BarrierTarget,
  PruneOptions,
  Row,
  StatementRunner,
  StoreOptions,
  TargetOptions,
} from './transaction/store.js';
export { defineExecutor, defineStore } from './transaction/define-store.js';
export { checkedConnection, runTransaction, type TransactionDriver } from './transaction/run.js';
export type { BarrierStatsSql, Dialect, DialectName, Placeholder, TransactionSettings } from './dialects/dialect.js';
export { dialects } from './dialects/index.js';
export { mysqlDialect } from './dialects/mysql.js';
export { postgresDialect } from './dialects/postgres.js';
export { sqliteDialect } from './dialects/sqlite.js';
export {
  barrierOf,
  type BranchReply,
  checkBackBarrierOf,
  CONTENT_TYPE,
  type DtmResult,
  type FrontOptions,
  type HttpAnswer,
  httpAnswer,
  HTTP_STATUS,
  type HttpStatus,
  readReply,
  reportError,
  type ReplyStatus,
  type RequestParts,
  runBranch,
  runCheckBack,
  type Verdict,
  verdictOfError,
  verdictOfResult,
} from './protocol/dtm.js';
