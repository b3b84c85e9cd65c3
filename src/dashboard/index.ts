/** `txbarrier/dashboard`: the operations dashboard's core; each framework's adapter is in `txbarrier/dashboard/<framework>`. */
export { createDashboard, type Dashboard, type DashboardActions, type DashboardOptions, DashboardRequestError } from './dashboard.js';
export type {
  BarrierSnapshot,
  BoundedCount,
  DashboardMessage,
  IdempotencySnapshot,
  MissingTable,
  OutboxSnapshot,
  Snapshot,
  StatusSummary,
} from './snapshot.js';
