/**
 * A test-only initiator over DTM's HTTP API (`/api/dtmsvr/...`), as DTM's own clients drive it:
 * a saga is submitted whole; a 2-phase message is prepared, its local transaction runs, then it is
 * submitted; a TCC is prepared, each branch registered (its confirm and cancel URLs) and its try
 * called by the initiator itself, then submitted, or aborted when a try failed. DTM's verdict is
 * read back through its query API. Nothing of it ships: txbarrier is no DTM client.
 */
import * as grpc from '@grpc/grpc-js';
import { DTM_TRANS_OPTIONS } from '../../../servers/dtm.js';
import { jsonService } from '../../fronts/grpc/json.js';

/** A global transaction's status in DTM's store. */
export type DtmStatus = 'prepared' | 'submitted' | 'aborting' | 'succeed' | 'failed';

/** Per-transaction options (DTM's `TransOptions`); `DTM_TRANS_OPTIONS` unless overridden. */
export interface TransOptions {
  retry_interval?: number;
  request_timeout?: number;
  /** Seconds until a TCC or message not submitted, or a saga not finished, fails (or, for a message, is checked back). */
  timeout_to_fail?: number;
}

export interface SagaStep {
  action: string;
  compensate: string;
}

export class DtmInitiator {
  constructor(
    /** `http://host:port/api/dtmsvr`. */
    readonly api: string,
  ) {}

  async #call(operation: string, body: Record<string, unknown>): Promise<void> {
    const response = await fetch(`${this.api}/${operation}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    // DTM's clients read a failure the same way: a status other than 200, or FAILURE in the body.
    if (response.status !== 200 || text.includes('FAILURE')) throw new DtmCallError(operation, response.status, text);
  }

  /** Submits a saga whose every step gets `payload` as its JSON body. */
  submitSaga(gid: string, steps: SagaStep[], payload: unknown, options: TransOptions & { protocol?: 'grpc' } = {}): Promise<void> {
    const { protocol, ...rest } = options;
    return this.#call('submit', {
      gid,
      trans_type: 'saga',
      steps,
      payloads: steps.map(() => JSON.stringify(payload)),
      ...DTM_TRANS_OPTIONS,
      ...rest,
      ...(protocol ? { protocol } : {}),
    });
  }

  /**
   * A 2-phase message: prepares it (steps called with `payload` after the submit; an empty
   * `action` URL is a step that always succeeds), runs `local` (the local transaction), submits.
   * `local` throwing aborts the message, unless `dieAfterLocal` plays an initiator that dies
   * between its local commit and the submit: then nothing more is sent and DTM must check back.
   */
  async message(
    gid: string,
    steps: { action: string }[],
    payload: unknown,
    queryPrepared: string,
    local: () => Promise<unknown>,
    options: TransOptions & { dieAfterLocal?: boolean } = {},
  ): Promise<void> {
    const { dieAfterLocal, ...rest } = options;
    const body = {
      gid,
      trans_type: 'msg',
      steps,
      payloads: steps.map(() => JSON.stringify(payload)),
      query_prepared: queryPrepared,
      ...DTM_TRANS_OPTIONS,
      ...rest,
    };
    await this.#call('prepare', body);
    try {
      await local();
    } catch (error) {
      if (!dieAfterLocal) await this.#call('abort', { gid, trans_type: 'msg' });
      throw error;
    }
    if (!dieAfterLocal) await this.#call('submit', body);
  }

  /**
   * A TCC: each branch's try is called by `tryBranch` (through whatever transport the branch
   * uses); all succeeded → submit (DTM confirms), else abort (DTM cancels every registered branch).
   * Resolves to whether it was submitted.
   */
  async tcc(
    gid: string,
    branches: { confirm: string; cancel: string }[],
    payload: unknown,
    tryBranch: (branchId: string) => Promise<boolean>,
    options: TransOptions & { protocol?: 'grpc' } = {},
  ): Promise<boolean> {
    const { protocol, ...rest } = options;
    const global = { gid, trans_type: 'tcc', ...DTM_TRANS_OPTIONS, ...rest, ...(protocol ? { protocol } : {}) };
    await this.#call('prepare', global);
    let tried = true;
    for (const [index, { confirm, cancel }] of branches.entries()) {
      const branchId = String(index + 1).padStart(2, '0');
      await this.#call('registerBranch', { gid, trans_type: 'tcc', branch_id: branchId, confirm, cancel, data: JSON.stringify(payload) });
      if (!(await tryBranch(branchId))) {
        tried = false;
        break;
      }
    }
    await this.#call(tried ? 'submit' : 'abort', global);
    return tried;
  }

  /** DTM's record of a global transaction and its branches. */
  async query(gid: string): Promise<{ status: DtmStatus | undefined; branches: { branch_id: string; op: string; status: string }[] }> {
    const response = await fetch(`${this.api}/query?gid=${encodeURIComponent(gid)}`);
    const json = (await response.json()) as { transaction: { status: DtmStatus } | null; branches: { branch_id: string; op: string; status: string }[] | null };
    return { status: json.transaction?.status, branches: json.branches ?? [] };
  }

  /** Waits until DTM has finished `gid` (succeed or failed) and resolves to that status. */
  async finished(gid: string, timeoutMs = 30_000): Promise<DtmStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status } = await this.query(gid);
      if (status === 'succeed' || status === 'failed') return status;
      if (Date.now() > deadline) throw new Error(`DTM did not finish ${gid} within ${timeoutMs} ms: still ${status}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export class DtmCallError extends Error {
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`DTM ${operation} answered ${status}: ${body}`);
  }
}

/** DTM's HTTP call of a TCC try, as dtmcli makes it: POST with the four fields in the query. Resolves to success. */
export async function tryOverHttp(url: string, gid: string, branchId: string, payload: unknown): Promise<boolean> {
  const query = new URLSearchParams({ gid, trans_type: 'tcc', branch_id: branchId, op: 'try' });
  const response = await fetch(`${url}?${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  const text = await response.text();
  return response.status === 200 && !text.includes('FAILURE');
}

/** The gRPC transfer service of test/fronts/grpc/chaos-service.ts: its DTM URL and a try as dtmgrpc makes it (`dtm-*` metadata). */
export function grpcTransfer(address: string) {
  const definition = jsonService(['Transfer']);
  const Client = grpc.makeGenericClientConstructor(definition, 'Transfer');
  const client = new Client(address, grpc.credentials.createInsecure());
  return {
    /** What DTM calls: `host:port/<service>/<method>`. */
    url: `${address}${definition.Transfer!.path}`,
    try(gid: string, branchId: string, payload: unknown): Promise<boolean> {
      const metadata = new grpc.Metadata();
      for (const [name, value] of Object.entries({ gid, trans_type: 'tcc', branch_id: branchId, op: 'try' })) metadata.set(`dtm-${name}`, value);
      return new Promise((resolve) =>
        client.makeUnaryRequest(definition.Transfer!.path, definition.Transfer!.requestSerialize, definition.Transfer!.responseDeserialize, payload, metadata, (error) =>
          resolve(!error),
        ),
      );
    },
    close: () => client.close(),
  };
}
