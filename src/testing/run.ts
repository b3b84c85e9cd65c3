import { randomBytes } from 'node:crypto';
import { type Delivery, deliver, type Handler, type Reply } from './deliver.js';
import type { AbortCause, SagaResult, SagaStatus, Violation } from './invariants.js';
import {
  ABORTING_FAULTS,
  type BranchOp,
  DEFAULT_FAULT_RATES,
  FAULT_KINDS,
  type FaultKind,
  planSagas,
  type SagaPlan,
} from './schedule.js';
import type { Crashable } from './service.js';

/** The forward and compensation handler of one saga branch. */
export interface BranchHandlers {
  action: Handler;
  compensate: Handler;
}

export interface ChaosOptions {
  /** The saga's branches in order; branch ids are `01`, `02`, … */
  branches: BranchHandlers[];
  /**
   * Your invariants, run once after every saga has finished: read your committed business data and
   * return what does not hold (`checkLedger` checks the saga invariants from ledger rows).
   */
  check: (sagas: SagaResult[]) => Violation[] | Promise<Violation[]>;
  /** Fixes the schedule of faults (default: random, and reported). */
  seed?: number;
  /** How many sagas (default 200). */
  sagas?: number;
  /** Sagas in flight at once (default 8). */
  concurrency?: number;
  /** Chance per saga of each fault, over `DEFAULT_FAULT_RATES`. */
  faults?: Partial<Record<FaultKind, number>>;
  /** The handler process to SIGKILL for the crash faults; without it they are not injected. */
  service?: Crashable;
  /** Each saga's business payload, drawn from a seeded `random` (default `{ amount }`, 1 to 100). */
  payload?: (random: () => number, index: number) => unknown;
  /** The coordinator's request timeout (default 3 s, DTM's). */
  requestTimeoutMs?: number;
}

export interface ChaosReport {
  seed: number;
  /** Every saga, in plan order, with its event log. */
  sagas: SagaResult[];
  /** How many of each fault were injected (a planned fault on a path the saga never took is not). */
  faults: Record<FaultKind, number>;
  /** Sagas by how they ended: `succeeded`, `compensated after <cause>`, `stuck`. */
  outcomes: Record<string, number>;
  /** Replies by kind: the barrier outcome when the handler told it, else the reply status. */
  replies: Record<string, number>;
  violations: Violation[];
  durationMs: number;
}

/** A forward action that got no answer this many times is given up on, and the saga compensated. */
const ACTION_ATTEMPTS = 8;
/** A compensation must succeed in the end; after this many attempts the saga is reported stuck. */
const COMPENSATION_ATTEMPTS = 60;
const RETRY_BASE_MS = 10;
const RETRY_CAP_MS = 250;

/**
 * Plays a saga coordinator against your handlers, injecting faults from a seeded schedule, then
 * runs your `check`. A violation of it, or a saga whose compensation never succeeded, is reported;
 * the seed and each saga's event log say how to reproduce it (`formatViolations`).
 * The schedule is fixed by the seed, counts and rates; the interleaving of concurrent sagas is not.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { branches, check, service, sagas = 200, concurrency = 8, requestTimeoutMs = 3000 } = options;
  const seed = options.seed ?? randomBytes(4).readUInt32BE();
  const rates = { ...DEFAULT_FAULT_RATES, ...options.faults };
  if (!service) rates['crash-between'] = rates['crash-during'] = 0;
  const payload = options.payload ?? ((random: () => number) => ({ amount: 1 + Math.floor(random() * 100) }));
  const plans = planSagas({ seed, sagas, branches: branches.length, rates, payload });

  const started = performance.now();
  const run: Run = {
    branches,
    service,
    requestTimeoutMs,
    gidPrefix: `chaos-${seed}-${randomBytes(3).toString('hex')}`,
    faults: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    replies: {},
  };
  const results: SagaResult[] = [];
  let next = 0;
  const worker = async () => {
    while (next < plans.length) {
      const plan = plans[next++]!;
      results[plan.index] = await playSaga(plan, run);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plans.length) }, worker));

  const outcomes: Record<string, number> = {};
  const stuck: Violation[] = [];
  for (const saga of results) {
    const outcome = saga.status === 'compensated' ? `compensated after ${saga.abortCause}` : saga.status;
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (saga.status === 'stuck') {
      stuck.push({ gid: saga.gid, problem: `a compensation did not succeed in ${COMPENSATION_ATTEMPTS} attempts` });
    }
  }
  const violations = [...stuck, ...(await check(results))];
  return { seed, sagas: results, faults: run.faults, outcomes, replies: run.replies, violations, durationMs: performance.now() - started };
}

/** What every saga of one run shares. */
interface Run {
  branches: BranchHandlers[];
  service: Crashable | undefined;
  requestTimeoutMs: number;
  gidPrefix: string;
  faults: Record<FaultKind, number>;
  replies: Record<string, number>;
}

/** One saga, as DTM runs it: actions in order; on a failure or a given-up action, compensate in reverse. */
async function playSaga(plan: SagaPlan, run: Run): Promise<SagaResult> {
  const gid = `${run.gidPrefix}-${plan.index}`;
  const branchIds = run.branches.map((_, i) => String(i + 1).padStart(2, '0'));
  const events: string[] = [];
  const note = (line: string) => events.push(line);
  const inject = (kind: FaultKind, what: string) => {
    run.faults[kind]++;
    note(`FAULT ${kind}: ${what}`);
  };

  const send = async (branch: number, op: BranchOp, fault?: Delivery['fault']): Promise<Reply> => {
    const delivery: Delivery = { transType: 'saga', gid, branchId: branchIds[branch]!, op, payload: plan.payload, ...(fault ? { fault } : {}) };
    const reply = await deliver(run.branches[branch]![op], delivery, run.requestTimeoutMs);
    const kind = reply.outcome ?? reply.status;
    run.replies[kind] = (run.replies[kind] ?? 0) + 1;
    note(`${delivery.branchId} ${op} → ${kind}${reply.status === 'error' ? ` (${reply.detail})` : ''}`);
    return reply;
  };

  const crash = async (kind: FaultKind, what: string) => {
    inject(kind, what);
    await run.service!.crash();
  };

  /** One attempt at a request, with the faults planned for its first attempt. */
  const attempt = async (branch: number, op: BranchOp, first: boolean): Promise<Reply> => {
    const planned = (kind: FaultKind) =>
      first ? plan.faults.find((f) => f.kind === kind && f.branch === branch && f.op === op) : undefined;
    const label = `${branchIds[branch]} ${op}`;
    const kill = planned('kill-transaction');
    if (kill) inject('kill-transaction', `${label} asked to lose its connection before commit`);
    const sending = send(branch, op, kill ? 'kill-transaction' : undefined);

    const during = planned('crash-during');
    if (during) {
      await new Promise((resolve) => setTimeout(resolve, during.delayMs));
      await crash('crash-during', `SIGKILL ${during.delayMs} ms into ${label}`);
    }
    let reply: Reply;
    const duplicate = planned('duplicate');
    if (duplicate?.together) {
      inject('duplicate', `${label} delivered twice at once`);
      const replies = await Promise.all([sending, send(branch, op)]);
      reply = replies.find((r) => r.status === 'success') ?? replies.find((r) => r.status === 'failure') ?? replies[0];
    } else if (duplicate) {
      await sending;
      inject('duplicate', `${label} delivered again after its reply was lost`);
      reply = await send(branch, op);
    } else {
      reply = await sending;
    }
    if (planned('crash-between')) await crash('crash-between', `SIGKILL after ${label} replied`);
    return reply;
  };

  const forward = async (branch: number): Promise<'success' | 'failure' | 'gave-up'> => {
    for (let n = 0; n < ACTION_ATTEMPTS; n++) {
      if (n > 0) await backoff(n);
      const { status } = await attempt(branch, 'action', n === 0);
      if (status === 'success' || status === 'failure') return status;
    }
    note(`${branchIds[branch]} action given up after ${ACTION_ATTEMPTS} attempts`);
    return 'gave-up';
  };

  // A compensation cannot fail for good: FAILURE is retried like any other answer.
  const compensate = async (branch: number): Promise<boolean> => {
    for (let n = 0; n < COMPENSATION_ATTEMPTS; n++) {
      if (n > 0) await backoff(n);
      if ((await attempt(branch, 'compensate', n === 0)).status === 'success') return true;
    }
    return false;
  };

  const finish = (status: SagaStatus, abortCause?: AbortCause): SagaResult => ({
    index: plan.index,
    gid,
    branchIds,
    status,
    ...(abortCause ? { abortCause } : {}),
    payload: plan.payload,
    faults: plan.faults,
    events,
  });

  const abort = plan.faults.find((f) => ABORTING_FAULTS.includes(f.kind));
  let abortedAt: number | undefined;
  let cause: AbortCause | undefined;
  for (let branch = 0; branch < branchIds.length && abortedAt === undefined; branch++) {
    if (abort?.branch === branch) {
      [abortedAt, cause] = [branch, abort.kind];
      continue;
    }
    const result = await forward(branch);
    if (result !== 'success') [abortedAt, cause] = [branch, result];
  }
  if (abortedAt === undefined) return finish('succeeded');

  let compensated = true;
  for (let branch = abortedAt; branch >= 0; branch--) {
    const id = branchIds[branch]!;
    let done: boolean;
    if (branch === abortedAt && cause === 'concurrent') {
      inject('concurrent', `${id} action and compensation sent at once`);
      [, done] = await Promise.all([send(branch, 'action'), compensate(branch)]);
    } else {
      if (branch === abortedAt && cause === 'compensate-first') inject(cause, `${id} compensated before its action was sent`);
      if (branch === abortedAt && cause === 'late-action') inject(cause, `${id} action held in the network`);
      done = await compensate(branch);
    }
    if (!done) compensated = false;
  }
  if (cause === 'late-action') {
    note(`${branchIds[abortedAt]} the held action arrives`);
    await send(abortedAt, 'action');
  }
  return finish(compensated ? 'compensated' : 'stuck', cause);
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempt - 1));
  return new Promise((resolve) => setTimeout(resolve, ms));
}
