export { Barrier, type BarrierResult } from './barrier.js';
export {
  BarrierConfigError,
  BarrierDuplicateMessage,
  BarrierError,
  BarrierFailure,
  BarrierInputError,
  BarrierOngoing,
  BarrierTransactionAborted,
  type FieldProblem,
} from './errors.js';
export { type BarrierFields, type Op, OPS_BY_TRANS_TYPE, type TransType } from './fields.js';
export type { BarrierHooks, Logger, Outcome, OutcomeEvent } from './observe.js';
export type {
  BarrierConnection,
  BarrierExecutor,
  BarrierStore,
  BarrierTarget,
  PruneOptions,
  Row,
  StoreOptions,
} from './store.js';
export { defineStore } from './define-store.js';
export { defineExecutor } from './executor.js';
export type { Dialect, DialectName, Placeholder } from './dialects/dialect.js';
export { dialects } from './dialects/index.js';
export { mysqlDialect } from './dialects/mysql.js';
export { postgresDialect } from './dialects/postgres.js';
export { sqliteDialect } from './dialects/sqlite.js';
export {
  barrierOf,
  type BranchReply,
  checkBackBarrierOf,
  type DtmResult,
  type FrontOptions,
  type HttpAnswer,
  httpAnswer,
  readReply,
  reportError,
  type ReplyStatus,
  type RequestParts,
  runBranch,
  runCheckBack,
  type Verdict,
  verdictOfError,
  verdictOfResult,
} from './protocol.js';
