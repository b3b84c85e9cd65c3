/**
 * The real DTM server as the coordinator of a transfer guarded by txbarrier, behind each front, on
 * each engine: saga, TCC and the 2-phase message with its check-back, then the network's faults
 * between DTM and the service (a fault proxy of our own) and the service killed mid-branch. Every
 * case checks DTM's own verdict through its query API and the barrier outcome of each delivery;
 * each group ends checking the money (conserved) and the ledger (no op applied twice, nothing
 * compensated that was not applied, nothing applied after its compensation).
 *
 * CI runs the short form: every case on Express × SQLite, MariaDB, PostgreSQL, and a saga and a TCC
 * through each other front on PostgreSQL. TXBARRIER_DTM_FULL=1 (`npm run test:dtm:full`) runs every
 * case through every front on every engine.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bank, type BankConfig, FROZEN_ACCOUNT, openBank, type Transfer } from '../../../chaos/bank.js';
import type { EngineName } from '../../../bench/engine.js';
import { Barrier, BarrierDuplicateMessage } from '../../../src/index.js';
import type { SagaResult } from '../../../src/testing/index.js';
import { hasServer } from '../../servers.js';
import { DtmInitiator, type DtmStatus, grpcTransfer, tryOverHttp } from './initiator.js';
import { type FaultProxy, faultProxy } from './proxy.js';
import { type Front, FRONTS, removeNestBuild, startTransferService, type TransferService } from './services.js';

const DTM = inject('dtm');
const FULL = process.env.TXBARRIER_DTM_FULL === '1';
const ENGINES: EngineName[] = ['sqlite', 'mysql', 'postgres'];

/** What one case has at hand. */
interface Context {
  dtm: DtmInitiator;
  bank: Bank;
  service: TransferService;
  /** Absent for gRPC, whose deliveries go straight to the service. */
  proxy?: FaultProxy;
  front: Front;
  /** The URL DTM calls for a branch op (through the proxy, for HTTP). */
  url(branchId: string, op: string): string;
  /** A fresh gid, and the record the group's final check reads. */
  begin(payload: Transfer): string;
  /** Waits for DTM's final verdict on `gid`, records it for the group's ledger check, and resolves to it. */
  verdict(gid: string, timeoutMs?: number): Promise<DtmStatus>;
  /** The outcomes (or HTTP status when the body named none) of the answered deliveries of one op, in order. */
  outcomes(gid: string, branchId: string, op: string): string[];
}

let counter = 0;
/** A transfer between two accounts of their own (1–19), never into the frozen account. */
const transfer = (): Transfer => {
  counter++;
  return { from: 1 + (counter % 9), to: 10 + (counter % 9), amount: 7 };
};
const toFrozen = (): Transfer => ({ ...transfer(), to: FROZEN_ACCOUNT });

const saga = (c: Context, gid: string, payload: Transfer, options = {}) =>
  c.dtm.submitSaga(
    gid,
    ['01', '02'].map((branch) => ({ action: c.url(branch, 'action'), compensate: c.url(branch, 'compensate') })),
    payload,
    { ...options, ...(c.front === 'grpc' ? { protocol: 'grpc' as const } : {}) },
  );

const tcc = async (c: Context, gid: string, payload: Transfer) => {
  const grpcClient = c.front === 'grpc' ? grpcTransfer(c.url('01', 'try').split('/')[0]!) : undefined;
  try {
    return await c.dtm.tcc(
      gid,
      ['01', '02'].map((branch) => ({ confirm: c.url(branch, 'confirm'), cancel: c.url(branch, 'cancel') })),
      payload,
      (branchId) => (grpcClient ? grpcClient.try(gid, branchId, payload) : tryOverHttp(c.url(branchId, 'try'), gid, branchId, payload)),
      // A TCC not submitted within this many seconds is cancelled by DTM: room for a loaded machine.
      { timeout_to_fail: 20, ...(grpcClient ? { protocol: 'grpc' as const } : {}) },
    );
  } finally {
    grpcClient?.close();
  }
};

/** The message's local transaction: branch 01's debit under the message's barrier (branch 00, op msg). */
const localDebit = (c: Context, gid: string, payload: Transfer) =>
  Barrier.forMessage(gid).call(c.bank.store, (tx) => c.bank.apply(tx, { gid, branchId: '01', op: 'action', payload }));

/** Message steps: 01 is done by the local transaction (an empty URL is a step DTM counts as done), 02 credits. */
const messageSteps = (c: Context) => [{ action: '' }, { action: c.url('02', 'action') }];

type Case = (c: Context) => Promise<void>;

/** Every case, by name. `saga-compensates` and `tcc-commits` run through every front. */
const CASES: Record<string, Case> = {
  async 'saga commits'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('succeed');
    if (c.proxy) for (const branch of ['01', '02']) expect(c.outcomes(gid, branch, 'action')).toEqual(['applied']);
  },

  async 'saga-compensates: a branch answers FAILURE, DTM compensates both (02 a null compensation)'(c) {
    const payload = toFrozen();
    const gid = c.begin(payload);
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('failed');
    if (!c.proxy) return;
    expect(c.outcomes(gid, '02', 'action')).toEqual(['409']);
    expect(c.outcomes(gid, '01', 'compensate')).toEqual(['applied']);
    expect(c.outcomes(gid, '02', 'compensate')).toEqual(['null-compensation']);
  },

  async 'tcc-commits: every try succeeds, DTM confirms each once'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    expect(await tcc(c, gid, payload)).toBe(true);
    expect(await c.verdict(gid)).toBe('succeed');
    if (c.proxy) for (const branch of ['01', '02']) expect(c.outcomes(gid, branch, 'confirm')).toEqual(['applied']);
  },

  async 'tcc: a try fails, DTM cancels both (02 a null compensation)'(c) {
    const payload = toFrozen();
    const gid = c.begin(payload);
    expect(await tcc(c, gid, payload)).toBe(false);
    expect(await c.verdict(gid)).toBe('failed');
    if (!c.proxy) return;
    expect(c.outcomes(gid, '01', 'cancel')).toEqual(['applied']);
    expect(c.outcomes(gid, '02', 'cancel')).toEqual(['null-compensation']);
  },

  async 'msg: local commit, submit, DTM delivers the step'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    await c.dtm.message(gid, messageSteps(c), payload, `${c.proxy!.url}/query-prepared`, () => localDebit(c, gid, payload));
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '02', 'action')).toEqual(['applied']);
    expect(c.outcomes(gid, '00', 'msg')).toEqual([]);
  },

  async 'msg: the initiator dies before its local transaction; the check-back rolls the message back and the late local transaction is refused'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    await c.dtm.message(gid, messageSteps(c), payload, `${c.proxy!.url}/query-prepared`, async () => undefined, { dieAfterLocal: true, timeout_to_fail: 2 });
    expect(await c.verdict(gid)).toBe('failed');
    expect(c.outcomes(gid, '00', 'msg')).toEqual(['409']);
    expect(c.outcomes(gid, '02', 'action')).toEqual([]);
    const late = await localDebit(c, gid, payload).catch((error: unknown) => error);
    expect(late).toBeInstanceOf(BarrierDuplicateMessage);
    expect((late as BarrierDuplicateMessage).committed).toBe(false);
  },

  async 'msg: the initiator dies between its local commit and the submit; the check-back finds the commit and DTM delivers'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    await c.dtm.message(gid, messageSteps(c), payload, `${c.proxy!.url}/query-prepared`, () => localDebit(c, gid, payload), {
      dieAfterLocal: true,
      timeout_to_fail: 2,
    });
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '00', 'msg')).toEqual(['200']);
    expect(c.outcomes(gid, '02', 'action')).toEqual(['applied']);
  },

  async 'fault: the reply to a committed action is lost; DTM retries and gets duplicate'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '02' && op === 'action' && attempt === 1 ? 'drop-reply' : undefined));
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '02', 'action')).toEqual(['applied', 'duplicate']);
  },

  async 'fault: the reply to a confirm is lost; DTM confirms again and gets duplicate'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '01' && op === 'confirm' && attempt === 1 ? 'drop-reply' : undefined));
    expect(await tcc(c, gid, payload)).toBe(true);
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '01', 'confirm')).toEqual(['applied', 'duplicate']);
  },

  async 'fault: an action held in the network until the saga timed out; its compensation overtakes it (null), then it lands (dangling)'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op }) => (branchId === '02' && op === 'action' ? 'hold' : undefined));
    await saga(c, gid, payload, { timeout_to_fail: 3 });
    expect(await c.verdict(gid)).toBe('failed');
    expect(c.outcomes(gid, '01', 'compensate')).toEqual(['applied']);
    expect(c.outcomes(gid, '02', 'compensate')).toEqual(['null-compensation']);
    await c.proxy!.release(gid);
    const late = c.outcomes(gid, '02', 'action');
    expect(late.length).toBeGreaterThan(0);
    expect(new Set(late)).toEqual(new Set(['dangling']));
  },

  async 'fault: an action delivered twice at once is applied once'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '01' && op === 'action' && attempt === 1 ? 'duplicate' : undefined));
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '01', 'action').sort()).toEqual(['applied', 'duplicate']);
  },
};

/** Run alone, after the others: it kills the service, which every case in flight would notice. */
const CRASH: Case = async (c) => {
  const payload = transfer();
  const gid = c.begin(payload);
  c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '02' && op === 'action' && attempt === 1 ? 'crash' : undefined));
  await saga(c, gid, payload);
  expect(await c.verdict(gid, 60_000)).toBe('succeed');
  const deliveries = c.proxy!.exchanges(gid).filter((e) => e.branchId === '02' && e.op === 'action');
  expect(deliveries[0], JSON.stringify(deliveries)).toMatchObject({ fault: 'crash' });
  expect(deliveries[0]!.status).toBeUndefined();
  expect(c.outcomes(gid, '02', 'action')).toEqual(['applied']);
};

const EVERY_FRONT = ['saga-compensates: a branch answers FAILURE, DTM compensates both (02 a null compensation)', 'tcc-commits: every try succeeds, DTM confirms each once'];

/** The groups of this run: [engine, front, cases, with the crash]. */
function groups(): [EngineName, Front, string[], boolean][] {
  const all = Object.keys(CASES);
  const result: [EngineName, Front, string[], boolean][] = [];
  for (const engine of ENGINES) {
    for (const front of FRONTS) {
      const everything = front === 'express' || FULL;
      if (!everything && engine !== 'postgres') continue;
      // gRPC: no HTTP proxy in between, no check-back route in its service: saga and TCC only.
      const cases = front === 'grpc' ? [...EVERY_FRONT, ...(FULL ? ['saga commits', 'tcc: a try fails, DTM cancels both (02 a null compensation)'] : [])] : everything ? all : EVERY_FRONT;
      result.push([engine, front, cases, everything && front !== 'grpc' && front !== 'nestjs']);
    }
  }
  return result;
}

afterAll(() => removeNestBuild());

describe.skipIf(!DTM)('DTM as coordinator', () => {
  describe.each(groups())('%s, %s', (engine, front, cases, withCrash) => {
    const available = engine === 'sqlite' || hasServer(engine);
    const results: SagaResult[] = [];
    let context: Context;
    let dir: string | undefined;

    beforeAll(async () => {
      if (!available) return;
      if (engine === 'sqlite') dir = mkdtempSync(join(tmpdir(), 'txbarrier-dtm-'));
      const config: BankConfig = { engine, prefix: `dtm_${randomBytes(4).toString('hex')}`, ...(dir ? { sqliteFile: join(dir, 'bank.db') } : {}) };
      const bank = await openBank(config);
      await bank.create();
      const service = await startTransferService(front, config);
      const proxy = front === 'grpc' ? undefined : await faultProxy(service.url);
      const base = proxy?.url ?? service.url;
      context = {
        dtm: new DtmInitiator(DTM!.httpApi),
        bank,
        service,
        ...(proxy ? { proxy } : {}),
        front,
        url: (branchId, op) => service.branchUrl(base, branchId, op),
        begin(payload) {
          const gid = `txb-${engine}-${front}-${randomBytes(6).toString('hex')}`;
          results.push({ index: results.length, gid, branchIds: ['01', '02'], status: 'stuck', payload, faults: [], events: [] });
          return gid;
        },
        async verdict(gid, timeoutMs) {
          const status = await this.dtm.finished(gid, timeoutMs);
          results.find((r) => r.gid === gid)!.status = status === 'succeed' ? 'succeeded' : 'compensated';
          return status;
        },
        outcomes: (gid, branchId, op) =>
          (proxy?.exchanges(gid) ?? [])
            .filter((e) => e.branchId === branchId && e.op === op && e.status !== undefined)
            .map((e) => e.outcome ?? String(e.status)),
      };
    });

    afterAll(async () => {
      await context?.proxy?.close();
      await context?.service.stop();
      if (context) {
        await context.bank.drop();
        await context.bank.close();
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    describe.skipIf(!available)('cases', () => {
      for (const name of cases) it.concurrent(name, () => CASES[name]!(context));
      if (withCrash) it('fault: the service is killed inside an action; restarted, DTM retries and it applies once', () => CRASH(context));
      it('the money is conserved and every op applied at most once, in order', async () => {
        const finished = results.filter((r) => r.status !== 'stuck');
        expect(finished.length).toBe(cases.length + (withCrash ? 1 : 0));
        expect(await context.bank.check(finished)).toEqual([]);
      });
    });
  });
});
