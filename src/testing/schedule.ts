/** What the harness does to a saga on purpose. */
export type FaultKind =
  /** A request is delivered twice: at the same moment, or again right after the first reply (a lost reply). */
  | 'duplicate'
  /** The coordinator aborts before a branch's action is sent: its compensation arrives first, the action never. */
  | 'compensate-first'
  /** A branch's action is held in the network: the saga is compensated, then the action arrives (dangling). */
  | 'late-action'
  /** A branch's action and its compensation arrive at the same moment. */
  | 'concurrent'
  /** The handler is asked (`delivery.fault`) to destroy its database connection before commit. */
  | 'kill-transaction'
  /** The handler process is killed with SIGKILL after a reply, and restarted. */
  | 'crash-between'
  /** The handler process is killed with SIGKILL while a request is in flight, and restarted. */
  | 'crash-during';

export const FAULT_KINDS: readonly FaultKind[] = [
  'duplicate',
  'compensate-first',
  'late-action',
  'concurrent',
  'kill-transaction',
  'crash-between',
  'crash-during',
];

/** These end the saga at their branch: the coordinator aborts there and compensates. */
export const ABORTING_FAULTS: readonly FaultKind[] = ['compensate-first', 'late-action', 'concurrent'];

/**
 * Chance per saga of each fault. `kill-transaction` is off unless asked for, since it needs the
 * handler's cooperation; the crashes need a `service` to kill.
 */
export const DEFAULT_FAULT_RATES: Readonly<Record<FaultKind, number>> = {
  duplicate: 0.2,
  'compensate-first': 0.05,
  'late-action': 0.05,
  concurrent: 0.05,
  'kill-transaction': 0,
  'crash-between': 0.01,
  'crash-during': 0.01,
};

export type BranchOp = 'action' | 'compensate';

export interface PlannedFault {
  kind: FaultKind;
  /** Index of the branch it hits. */
  branch: number;
  /** The op it hits (the aborting kinds always name `action`). */
  op: BranchOp;
  /** `duplicate`: the copy is sent together with the first delivery rather than after its reply. */
  together: boolean;
  /** `crash-during`: milliseconds between sending the request and the kill. */
  delayMs: number;
}

export interface SagaPlan {
  index: number;
  /** The business payload every delivery of this saga carries. */
  payload: unknown;
  faults: PlannedFault[];
}

/** A small seeded PRNG (mulberry32): uniform floats in [0, 1), the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface PlanOptions {
  seed: number;
  sagas: number;
  branches: number;
  rates: Readonly<Record<FaultKind, number>>;
  payload: (random: () => number, index: number) => unknown;
}

/** The whole schedule, fixed by the seed, the counts and the rates before anything is sent. */
export function planSagas({ seed, sagas, branches, rates, payload }: PlanOptions): SagaPlan[] {
  const random = seededRandom(seed);
  // Payloads draw from their own stream, so a payload function never shifts the faults.
  const payloadRandom = seededRandom(seed ^ 0x9e3779b9);
  const pick = (n: number) => Math.floor(random() * n);
  const plans: SagaPlan[] = [];
  for (let index = 0; index < sagas; index++) {
    const faults: PlannedFault[] = [];
    for (const kind of FAULT_KINDS) {
      if (random() >= rates[kind]) continue;
      const aborting = ABORTING_FAULTS.includes(kind);
      // One abort per saga: the coordinator can only give up once.
      if (aborting && faults.some((f) => ABORTING_FAULTS.includes(f.kind))) continue;
      faults.push({
        kind,
        branch: pick(branches),
        op: aborting || random() < 0.5 ? 'action' : 'compensate',
        together: random() < 0.5,
        delayMs: pick(5),
      });
    }
    plans.push({ index, payload: payload(payloadRandom, index), faults });
  }
  return plans;
}
