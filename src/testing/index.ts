/**
 * `txbarrier/testing`: a fault-injection harness for saga branch handlers. It plays a coordinator
 * against your handlers (functions or HTTP URLs), delivers duplicates, compensations before
 * actions, late actions, concurrent action and compensation, killed transactions and process
 * crashes on a seeded schedule, then checks your invariants against what your database committed.
 * `Coordinator` runs the saga and TCC transactions you script, with network faults per delivery.
 * Imports no database driver and no web framework.
 */
export {
  type Attempt,
  Coordinator,
  type CoordinatorOptions,
  type NetworkFault,
  randomFaults,
  type SagaStep,
  type TccBranch,
} from './coordinator.js';
export { type Delivery, type Handler, type Reply, type ReplyStatus } from './deliver.js';
export {
  type AbortCause,
  checkLedger,
  type LedgerEntry,
  type SagaResult,
  type SagaStatus,
  type Violation,
} from './invariants.js';
export { formatReport, formatViolations } from './report.js';
export { type BranchHandlers, type ChaosOptions, type ChaosReport, runChaos } from './run.js';
export {
  type BranchOp,
  DEFAULT_FAULT_RATES,
  FAULT_KINDS,
  type FaultKind,
  type PlannedFault,
  planSagas,
  type SagaPlan,
  seededRandom,
} from './schedule.js';
export { type Crashable, type Service, type ServiceOptions, startService } from './service.js';
