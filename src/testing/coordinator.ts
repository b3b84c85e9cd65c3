/**
 * A scripted saga/TCC coordinator that behaves like DTM on a bad network: it calls each branch
 * (a function, or a URL with `gid`, `trans_type`, `branch_id`, `op` in the query and the payload as
 * JSON), reads the answer as DTM does, retries, gives up on forward ops that never answer, and
 * retries second-phase ops until they succeed. Faults are decided per delivery: duplicated
 * requests, lost replies, gateway errors, and requests held in the network until the transaction
 * is over. `runChaos` plays a seeded saga schedule with process crashes; this plays the
 * transactions you script. Both deliver through `deliver`, so both read a reply the same way.
 * For tests and examples; not a production coordinator.
 */
import { type Delivery, deliver, type Handler } from './deliver.js';

export interface SagaStep {
  action: Handler;
  compensate: Handler;
  payload: unknown;
}

export interface TccBranch {
  try: Handler;
  confirm: Handler;
  cancel: Handler;
  payload: unknown;
}

/** One delivery the coordinator is about to send, and which attempt at its op it is (from 1). */
export interface Attempt extends Delivery {
  attempt: number;
}

/**
 * - `duplicate`: sent twice at once (a retry racing the original).
 * - `lose-reply`: delivered, but the answer is lost; the coordinator sees a timeout.
 * - `bad-gateway`: never delivered; a proxy answers 502.
 * - `delay`: held in the network and delivered after the transaction has finished (after its
 *   compensations, if any); the coordinator sees a timeout.
 */
export type NetworkFault = 'duplicate' | 'lose-reply' | 'bad-gateway' | 'delay';

export interface CoordinatorOptions {
  /** Decides the fault, if any, of each delivery. Defaults to none. */
  faults?: (attempt: Attempt) => NetworkFault | undefined;
  /** Per-request timeout. Defaults to 3000 ms (DTM's). */
  timeoutMs?: number;
  /** Pause between retries. Defaults to 100 ms (DTM waits 10 s; tests want it short). */
  retryDelayMs?: number;
  /**
   * Unanswered attempts (timeouts, errors) at a forward op before the transaction gives up and rolls
   * back; ONGOING does not count. Defaults to 3. DTM itself: a TCC initiator gives up at the first
   * failed try; a saga action is retried with backoff until the saga's `timeout_to_fail`, if it has one, else forever.
   */
  forwardAttempts?: number;
  /** Ops are retried until they are decided (second-phase ops until they succeed); past this many attempts it is a bug and the call rejects. Defaults to 100. */
  maxAttempts?: number;
}

type Answer = 'success' | 'failure' | 'ongoing' | 'error';

interface Request {
  delivery: Delivery;
  handler: Handler;
}

export class Coordinator {
  /** How many deliveries got each fault. */
  readonly injected: Record<NetworkFault, number> = { duplicate: 0, 'lose-reply': 0, 'bad-gateway': 0, delay: 0 };
  readonly #options: Required<Omit<CoordinatorOptions, 'faults'>> & Pick<CoordinatorOptions, 'faults'>;
  /** Requests held in the network, by gid, released when that transaction ends. */
  readonly #held = new Map<string, (() => Promise<Answer>)[]>();

  constructor(options: CoordinatorOptions = {}) {
    this.#options = { timeoutMs: 3000, retryDelayMs: 100, forwardAttempts: 3, maxAttempts: 100, ...options };
  }

  /** Runs the actions in order; on a failure (or a step that never answers) compensates every step it started, last first. */
  async saga(gid: string, steps: readonly SagaStep[]): Promise<'succeeded' | 'compensated'> {
    const request = (index: number, op: 'action' | 'compensate'): Request => ({
      delivery: { transType: 'saga', gid, branchId: branchIdOf(index), op, payload: steps[index]!.payload },
      handler: steps[index]![op],
    });
    try {
      for (const index of steps.keys()) {
        if ((await this.#forward(request(index, 'action'))) === 'failure') {
          for (let started = index; started >= 0; started--) await this.#mustSucceed(request(started, 'compensate'));
          return 'compensated';
        }
      }
      return 'succeeded';
    } finally {
      await this.#release(gid);
    }
  }

  /** Tries each branch in order; confirms all if every try succeeded, else cancels every branch it tried. */
  async tcc(gid: string, branches: readonly TccBranch[]): Promise<'confirmed' | 'cancelled'> {
    const request = (index: number, op: 'try' | 'confirm' | 'cancel'): Request => ({
      delivery: { transType: 'tcc', gid, branchId: branchIdOf(index), op, payload: branches[index]!.payload },
      handler: branches[index]![op],
    });
    try {
      for (const index of branches.keys()) {
        if ((await this.#forward(request(index, 'try'))) === 'failure') {
          for (let tried = index; tried >= 0; tried--) await this.#mustSucceed(request(tried, 'cancel'));
          return 'cancelled';
        }
      }
      for (const index of branches.keys()) await this.#mustSucceed(request(index, 'confirm'));
      return 'confirmed';
    } finally {
      await this.#release(gid);
    }
  }

  /** A forward op: success, failure, or failure after `forwardAttempts` unanswered tries (the transaction times out). */
  async #forward(request: Request): Promise<'success' | 'failure'> {
    let unanswered = 0;
    for (let attempt = 1; attempt <= this.#options.maxAttempts; attempt++) {
      const answer = await this.#deliver(request, attempt);
      if (answer === 'success' || answer === 'failure') return answer;
      if (answer === 'error' && ++unanswered >= this.#options.forwardAttempts) return 'failure';
      await sleep(this.#options.retryDelayMs);
    }
    throw new Error(`${describe(request)} was never decided`);
  }

  /** A second-phase op, which may not fail: retried on every answer but success, FAILURE included (as DTM does). */
  async #mustSucceed(request: Request): Promise<void> {
    for (let attempt = 1; attempt <= this.#options.maxAttempts; attempt++) {
      if ((await this.#deliver(request, attempt)) === 'success') return;
      await sleep(this.#options.retryDelayMs);
    }
    throw new Error(`${describe(request)} never succeeded`);
  }

  async #deliver(request: Request, attempt: number): Promise<Answer> {
    const fault = this.#options.faults?.({ ...request.delivery, attempt });
    if (fault) this.injected[fault]++;
    const send = async () => (await deliver(request.handler, request.delivery, this.#options.timeoutMs)).status;
    switch (fault) {
      case 'bad-gateway':
        return 'error';
      case 'lose-reply':
        await send();
        return 'error';
      case 'duplicate': {
        const [first] = await Promise.all([send(), send()]);
        return first;
      }
      case 'delay': {
        const { gid } = request.delivery;
        this.#held.set(gid, [...(this.#held.get(gid) ?? []), send]);
        return 'error';
      }
      default:
        return send();
    }
  }

  /** Delivers the requests the network held for `gid`, now that the transaction has finished. */
  async #release(gid: string): Promise<void> {
    const held = this.#held.get(gid) ?? [];
    this.#held.delete(gid);
    await Promise.all(held.map((send) => send()));
  }
}

/** Faults at random, each with its own probability per delivery (for demos; tests want a plan). */
export function randomFaults(rates: Partial<Record<NetworkFault, number>>, random: () => number = Math.random) {
  return (): NetworkFault | undefined => {
    let roll = random();
    for (const [fault, rate] of Object.entries(rates) as [NetworkFault, number][]) {
      if (roll < rate) return fault;
      roll -= rate;
    }
    return undefined;
  };
}

/** DTM numbers branches 01, 02, … in the order they were added. */
function branchIdOf(index: number): string {
  return String(index + 1).padStart(2, '0');
}

function describe({ delivery: { op, gid, branchId } }: Request): string {
  return `${op} of ${gid} branch ${branchId}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
