/**
 * A small saga/TCC coordinator over HTTP that behaves like DTM on a bad network: it calls each
 * branch with `gid`, `trans_type`, `branch_id`, `op` in the query and the payload as JSON, reads
 * the answer as DTM does, retries, gives up on forward ops that never answer, and retries
 * compensations until they succeed. Faults are injected per delivery: duplicated requests, lost
 * replies, gateway errors, and requests held in the network until the transaction is over.
 * For examples and tests; not a production coordinator.
 */

export interface SagaStep {
  action: string;
  compensate: string;
  payload: unknown;
}

export interface TccBranch {
  try: string;
  confirm: string;
  cancel: string;
  payload: unknown;
}

/** One request the coordinator is about to send; `attempt` counts from 1 per op. */
export interface Delivery {
  gid: string;
  transType: 'saga' | 'tcc';
  branchId: string;
  op: string;
  url: string;
  payload: unknown;
  attempt: number;
}

/**
 * - `duplicate`: sent twice at once (a retry racing the original).
 * - `lose-reply`: delivered, but the answer is lost; the coordinator sees a timeout.
 * - `bad-gateway`: never delivered; a proxy answers 502.
 * - `delay`: held in the network and delivered after the transaction has finished (after its
 *   compensations, if any); the coordinator sees a timeout.
 */
export type Fault = 'duplicate' | 'lose-reply' | 'bad-gateway' | 'delay';

/** DTM's reading of an answer: 425 or the word ONGOING first, then 409 or the word FAILURE, then 200. */
type Answer = 'success' | 'failure' | 'ongoing' | 'error';

export interface CoordinatorOptions {
  /** Decides the fault, if any, of each delivery. */
  faults?: (delivery: Delivery) => Fault | undefined;
  /** Per-request timeout (DTM: 3 s). */
  timeoutMs?: number;
  /** Pause between retries (DTM: 10 s; tests want it short). */
  retryDelayMs?: number;
  /** Unanswered attempts (timeouts, errors) at a forward op before the transaction times out to failure and rolls back. ONGOING does not count. */
  forwardAttempts?: number;
  /** Ops are retried until they are decided (second-phase ops until they succeed); past this many attempts it is a bug. */
  maxAttempts?: number;
}

export class Coordinator {
  /** How many deliveries got each fault. */
  readonly injected: Record<Fault, number> = { duplicate: 0, 'lose-reply': 0, 'bad-gateway': 0, delay: 0 };
  readonly #options: Required<Omit<CoordinatorOptions, 'faults'>> & Pick<CoordinatorOptions, 'faults'>;
  /** Requests held in the network, by gid, released when that transaction ends. */
  readonly #held = new Map<string, (() => Promise<Answer>)[]>();

  constructor(options: CoordinatorOptions = {}) {
    this.#options = { timeoutMs: 3000, retryDelayMs: 100, forwardAttempts: 3, maxAttempts: 100, ...options };
  }

  /** Runs the actions in order; on a failure (or a step that never answers) compensates every step it started, last first. */
  async saga(gid: string, steps: readonly SagaStep[]): Promise<'succeeded' | 'compensated'> {
    const branch = (index: number) => ({ gid, transType: 'saga' as const, branchId: branchIdOf(index) });
    try {
      for (const [index, step] of steps.entries()) {
        const answer = await this.#forward({ ...branch(index), op: 'action', url: step.action, payload: step.payload });
        if (answer === 'failure') {
          for (let started = index; started >= 0; started--) {
            const { compensate, payload } = steps[started]!;
            await this.#mustSucceed({ ...branch(started), op: 'compensate', url: compensate, payload });
          }
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
    const branch = (index: number) => ({ gid, transType: 'tcc' as const, branchId: branchIdOf(index) });
    try {
      for (const [index, { try: url, payload }] of branches.entries()) {
        if ((await this.#forward({ ...branch(index), op: 'try', url, payload })) === 'failure') {
          for (let tried = index; tried >= 0; tried--) {
            const { cancel, payload: tryPayload } = branches[tried]!;
            await this.#mustSucceed({ ...branch(tried), op: 'cancel', url: cancel, payload: tryPayload });
          }
          return 'cancelled';
        }
      }
      for (const [index, { confirm, payload }] of branches.entries()) {
        await this.#mustSucceed({ ...branch(index), op: 'confirm', url: confirm, payload });
      }
      return 'confirmed';
    } finally {
      await this.#release(gid);
    }
  }

  /** A forward op: success, failure, or failure after `forwardAttempts` unanswered tries (the transaction times out). */
  async #forward(request: Omit<Delivery, 'attempt'>): Promise<'success' | 'failure'> {
    let unanswered = 0;
    for (let attempt = 1; attempt <= this.#options.maxAttempts; attempt++) {
      const answer = await this.#deliver({ ...request, attempt });
      if (answer === 'success' || answer === 'failure') return answer;
      if (answer === 'error' && ++unanswered >= this.#options.forwardAttempts) return 'failure';
      await sleep(this.#options.retryDelayMs);
    }
    throw new Error(`${request.op} of ${request.gid} branch ${request.branchId} was never decided`);
  }

  /** A second-phase op, which may not fail: retried on every answer but success, FAILURE included (as DTM does). */
  async #mustSucceed(request: Omit<Delivery, 'attempt'>): Promise<void> {
    for (let attempt = 1; attempt <= this.#options.maxAttempts; attempt++) {
      if ((await this.#deliver({ ...request, attempt })) === 'success') return;
      await sleep(this.#options.retryDelayMs);
    }
    throw new Error(`${request.op} of ${request.gid} branch ${request.branchId} never succeeded`);
  }

  async #deliver(delivery: Delivery): Promise<Answer> {
    const fault = this.#options.faults?.(delivery);
    if (fault) this.injected[fault]++;
    switch (fault) {
      case 'bad-gateway':
        return 'error';
      case 'lose-reply':
        await this.#send(delivery);
        return 'error';
      case 'duplicate': {
        const [first] = await Promise.all([this.#send(delivery), this.#send(delivery)]);
        return first;
      }
      case 'delay': {
        const held = this.#held.get(delivery.gid) ?? [];
        held.push(() => this.#send(delivery));
        this.#held.set(delivery.gid, held);
        return 'error';
      }
      default:
        return this.#send(delivery);
    }
  }

  /** Delivers the requests the network held for `gid`, now that the transaction has finished. */
  async #release(gid: string): Promise<void> {
    const held = this.#held.get(gid) ?? [];
    this.#held.delete(gid);
    await Promise.all(held.map((send) => send()));
  }

  async #send({ gid, transType, branchId, op, url, payload }: Delivery): Promise<Answer> {
    const query = new URLSearchParams({ gid, trans_type: transType, branch_id: branchId, op });
    try {
      const response = await fetch(`${url}?${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      const body = await response.text();
      if (response.status === 425 || body.includes('ONGOING')) return 'ongoing';
      if (response.status === 409 || body.includes('FAILURE')) return 'failure';
      return response.status === 200 ? 'success' : 'error';
    } catch {
      // A timeout or a refused connection: the coordinator cannot know whether the branch ran.
      return 'error';
    }
  }
}

/** Faults at random, each with its own probability per delivery (for demos; tests want a plan). */
export function randomFaults(rates: Partial<Record<Fault, number>>, random: () => number = Math.random) {
  return (): Fault | undefined => {
    let roll = random();
    for (const [fault, rate] of Object.entries(rates) as [Fault, number][]) {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
