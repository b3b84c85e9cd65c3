import { BarrierFailure, BarrierOngoing } from '../errors.js';
import { type BranchReply, outcomeIn, readReply, type ReplyStatus } from '../protocol/dtm.js';
/** One request from the coordinator to a branch handler. `Barrier.from(delivery)` reads its fields. */
export interface Delivery {
  transType: 'saga' | 'tcc';
  gid: string;
  branchId: string;
  /** A saga's `action`/`compensate` (all `runChaos` sends), or a TCC's `try`/`confirm`/`cancel`. */
  op: 'action' | 'compensate' | 'try' | 'confirm' | 'cancel';
  /** The transaction's business payload (sent as the JSON body to a URL). */
  payload: unknown;
  /**
   * `'kill-transaction'`: destroy your database connection inside the barrier's transaction, after
   * the business work and before the commit (sent to a URL as the `txbarrier-fault` header).
   */
  fault?: 'kill-transaction';
}

/**
 * A branch handler: a function, or the URL of an HTTP endpoint speaking DTM's protocol (query
 * parameters `gid`, `trans_type`, `branch_id`, `op`; 200 success, 409 failure, 425 ongoing).
 * A function succeeds by resolving, fails by throwing `BarrierFailure`, and asks for a retry by
 * throwing `BarrierOngoing`; anything else it throws counts as an error, retried like a 5xx.
 */
export type Handler = string | URL | ((delivery: Delivery) => unknown);

export type { ReplyStatus };

/** A reply as the protocol reads it (`outcome`: a returned `BarrierResult`'s, or the JSON body's). */
export interface Reply extends Pick<BranchReply, 'status' | 'outcome'> {
  /** The error or HTTP status, for the event log. */
  detail?: string;
}

/** Sends one delivery and reads the answer; never throws. */
export async function deliver(handler: Handler, delivery: Delivery, timeoutMs: number): Promise<Reply> {
  if (typeof handler === 'function') {
    try {
      return { status: 'success', ...outcomeIn(await handler(delivery)) };
    } catch (error) {
      const status = error instanceof BarrierFailure ? 'failure' : error instanceof BarrierOngoing ? 'ongoing' : 'error';
      return { status, detail: describe(error) };
    }
  }
  const url = new URL(handler);
  const { gid, transType, branchId, op, payload, fault } = delivery;
  for (const [name, value] of Object.entries({ gid, trans_type: transType, branch_id: branchId, op })) {
    url.searchParams.set(name, value);
  }
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(fault ? { 'txbarrier-fault': fault } : {}) },
      body: JSON.stringify(payload ?? null),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const { status, outcome } = readReply(response.status, await response.text());
    return { status, ...(outcome ? { outcome } : {}), detail: `HTTP ${response.status}` };
  } catch (error) {
    return { status: 'error', detail: describe(error) };
  }
}

/** The message and, for fetch's opaque "fetch failed", the cause that says what happened. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.name}: ${error.message}${cause}`;
}
