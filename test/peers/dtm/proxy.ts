/**
 * An HTTP proxy between DTM and a branch service that makes the network's faults on purpose, per
 * request, from the branch the query names: a reply dropped after the service committed, a request
 * held back until the test lets it through (so a compensation overtakes its action), a request
 * delivered twice at once, a request that kills the service mid-branch. It records every
 * exchange, so a test can assert which barrier outcome each delivery got. Given several services
 * (replicas of one service), it sends each delivery to the next, in turn.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxyFault =
  /** Delivered; the service's answer never reaches DTM (the connection is cut). */
  | 'drop-reply'
  /** Held in the network until `release(gid)`, then delivered; DTM's own request times out meanwhile. */
  | 'hold'
  /** Delivered twice at once; DTM gets the first answer. */
  | 'duplicate'
  /** Delivered with `txbarrier-fault: crash`: the service SIGKILLs itself inside the branch's transaction. */
  | 'crash';

/** One request as the proxy saw it. */
export interface Exchange {
  gid: string;
  branchId: string;
  op: string;
  /** Which delivery of this gid/branch/op it is, from 1 (a `duplicate`'s copies share one). */
  attempt: number;
  fault?: ProxyFault;
  /** The service's status, or `undefined` if it never answered. */
  status?: number;
  /** The barrier outcome the body named (`applied`, `duplicate`, `null-compensation`, `dangling`), if any. */
  outcome?: string;
  /** True for a held request, delivered after `release`. */
  late?: boolean;
  /** Which of the services answered it (its index in the proxy's list). */
  replica?: number;
}

export type FaultPlan = (request: { branchId: string; op: string; attempt: number }) => ProxyFault | undefined;

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: use it in place of the service's URL. */
  readonly url: string;
  /** Sets the faults of one global transaction's requests. */
  plan(gid: string, faults: FaultPlan): void;
  /** Delivers the requests held for `gid` and resolves once the service answered them. */
  release(gid: string): Promise<void>;
  /** Every exchange of `gid`, in the order their answers came (or did not). */
  exchanges(gid: string): Exchange[];
  close(): Promise<void>;
}

export async function faultProxy(targets: readonly string[]): Promise<FaultProxy> {
  let turn = 0;
  const plans = new Map<string, FaultPlan>();
  const attempts = new Map<string, number>();
  const held = new Map<string, (() => Promise<void>)[]>();
  const log = new Map<string, Exchange[]>();

  interface Answer {
    replica: number;
    status?: number;
    headers: IncomingMessage['headers'];
    body: Buffer;
  }
  const forward = (incoming: IncomingMessage, body: Buffer, extraHeaders: Record<string, string> = {}) =>
    new Promise<Answer>((resolve) => {
      const replica = turn++ % targets.length;
      const headers = { ...incoming.headers, ...extraHeaders };
      const unanswered = () => resolve({ replica, headers: {}, body: Buffer.alloc(0) });
      const upstream = httpRequest(new URL(incoming.url!, targets[replica]), { method: incoming.method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ replica, status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', unanswered);
      });
      // A service killed mid-request: no answer.
      upstream.on('error', unanswered);
      upstream.end(body);
    });

  const record = (exchange: Exchange, answer: Answer) => {
    exchange.replica = answer.replica;
    if (answer.status !== undefined) exchange.status = answer.status;
    const outcome = /"outcome":"([a-z-]+)"/.exec(answer.body.toString())?.[1];
    if (outcome) exchange.outcome = outcome;
    log.set(exchange.gid, [...(log.get(exchange.gid) ?? []), exchange]);
  };

  const reply = (res: ServerResponse, answer: Answer) => {
    if (answer.status === undefined) return void res.socket?.destroy();
    res.writeHead(answer.status, { 'content-type': answer.headers['content-type'] ?? 'application/json' });
    res.end(answer.body);
  };

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const query = new URL(req.url!, 'http://proxy').searchParams;
    const gid = query.get('gid') ?? '';
    const branchId = query.get('branch_id') ?? '00';
    const op = query.get('op') ?? 'msg';
    const key = `${gid}\u0000${branchId}\u0000${op}`;
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    const fault = plans.get(gid)?.({ branchId, op, attempt });
    const exchange: Exchange = { gid, branchId, op, attempt, ...(fault ? { fault } : {}) };
    switch (fault) {
      case 'drop-reply': {
        record(exchange, await forward(req, body));
        return void res.socket?.destroy();
      }
      case 'hold': {
        // DTM's request times out and it retries; this copy stays in the network till released.
        held.set(gid, [...(held.get(gid) ?? []), async () => record({ ...exchange, late: true }, await forward(req, body))]);
        return;
      }
      case 'duplicate': {
        const [first, second] = await Promise.all([forward(req, body), forward(req, body)]);
        record({ ...exchange }, first);
        record({ ...exchange }, second);
        return reply(res, first);
      }
      case 'crash': {
        const answer = await forward(req, body, { 'txbarrier-fault': 'crash' });
        record(exchange, answer);
        return reply(res, answer);
      }
      default: {
        const answer = await forward(req, body);
        record(exchange, answer);
        return reply(res, answer);
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    plan: (gid, faults) => void plans.set(gid, faults),
    async release(gid) {
      const sends = held.get(gid) ?? [];
      held.delete(gid);
      await Promise.all(sends.map((send) => send()));
    },
    exchanges: (gid) => log.get(gid) ?? [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
