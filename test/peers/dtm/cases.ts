/**
 * The cases of the DTM suites and the group that runs them: a transfer service (in a process of its
 * own, behind a fault proxy of ours for HTTP) on one engine, DTM coordinating, a test-only
 * initiator starting each global transaction. Every case checks DTM's verdict through its query
 * API and the barrier outcome of each delivery; each group ends checking that the money is conserved
 * and no op was applied twice, compensated without being applied, or applied after its compensation.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Bank, type BankConfig, FROZEN_ACCOUNT, openBank, type Transfer } from '../../../chaos/bank.js';
import type { EngineName } from '../../../servers/index.js';
import { Barrier, BarrierDuplicateMessage } from '../../../src/index.js';
import type { SagaResult } from '../../../src/testing/index.js';
import { hasServer } from '../../support/servers.js';
import { DtmInitiator, type DtmStatus, grpcTransfer, tryOverHttp } from './initiator.js';
import { type FaultProxy, faultProxy } from './proxy.js';
import { type Front, startTransferService, type TransferService } from './services.js';
import { dtmTransferBinary } from '../../../servers/dtm.js';
import { type Service, startService } from '../../../src/testing/index.js';

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
  /**
   * The outcomes of the answered deliveries of one op, in order: the barrier's outcome the body
   * named, else the status; with a Go replica, every suppressed outcome is `suppressed` (DTM's Go
   * client answers them all alike).
   */
  outcomes(gid: string, branchId: string, op: string): string[];
  /** Expected outcomes as `outcomes` reports them here: with a Go replica, every suppressed outcome is `suppressed`. */
  norm(outcomes: string[]): string[];
  /** Runs DTM's workflow "transfer" through DTM's Go workflow client (servers/go/dtm-transfer); resolves to its HTTP status. */
  workflow(gid: string, payload: Transfer): Promise<number>;
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
  // A gRPC client per service a try goes to (with a Go replica, each branch's try has its own).
  const grpcClients = new Map<string, ReturnType<typeof grpcTransfer>>();
  const grpcTry = (branchId: string) => {
    const address = c.url(branchId, 'try').split('/')[0]!;
    let client = grpcClients.get(address);
    if (!client) grpcClients.set(address, (client = grpcTransfer(address)));
    return client.try(gid, branchId, payload);
  };
  try {
    return await c.dtm.tcc(
      gid,
      ['01', '02'].map((branch) => ({ confirm: c.url(branch, 'confirm'), cancel: c.url(branch, 'cancel') })),
      payload,
      (branchId) => (c.front === 'grpc' ? grpcTry(branchId) : tryOverHttp(c.url(branchId, 'try'), gid, branchId, payload)),
      // A TCC not submitted within this many seconds is cancelled by DTM: room for a loaded machine.
      { timeout_to_fail: 20, ...(c.front === 'grpc' ? { protocol: 'grpc' as const } : {}) },
    );
  } finally {
    for (const client of grpcClients.values()) client.close();
  }
};

/** The message's local transaction: branch 01's debit under the message's barrier (branch 00, op msg). */
const localDebit = (c: Context, gid: string, payload: Transfer) =>
  Barrier.forMessage(gid).call(c.bank.store, (tx) => c.bank.apply(tx, { gid, branchId: '01', op: 'action', payload }));

/** Message steps: 01 is done by the local transaction (an empty URL is a step DTM counts as done), 02 credits. */
const messageSteps = (c: Context) => [{ action: '' }, { action: c.url('02', 'action') }];

type Case = (c: Context) => Promise<void>;

/** Every case, by name. `saga-compensates` and `tcc-commits` run through every front. */
export const CASES: Record<string, Case> = {
  async 'saga commits'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('succeed');
    if (c.proxy) for (const branch of ['01', '02']) expect(c.outcomes(gid, branch, 'action')).toEqual(c.norm(['applied']));
  },

  async 'saga-compensates: a branch answers FAILURE, DTM compensates both (02 a null compensation)'(c) {
    const payload = toFrozen();
    const gid = c.begin(payload);
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('failed');
    if (!c.proxy) return;
    expect(c.outcomes(gid, '02', 'action')).toEqual(c.norm(['409']));
    expect(c.outcomes(gid, '01', 'compensate')).toEqual(c.norm(['applied']));
    expect(c.outcomes(gid, '02', 'compensate')).toEqual(c.norm(['null-compensation']));
  },

  async 'tcc-commits: every try succeeds, DTM confirms each once'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    expect(await tcc(c, gid, payload)).toBe(true);
    expect(await c.verdict(gid)).toBe('succeed');
    if (c.proxy) for (const branch of ['01', '02']) expect(c.outcomes(gid, branch, 'confirm')).toEqual(c.norm(['applied']));
  },

  async 'tcc: a try fails, DTM cancels both (02 a null compensation)'(c) {
    const payload = toFrozen();
    const gid = c.begin(payload);
    expect(await tcc(c, gid, payload)).toBe(false);
    expect(await c.verdict(gid)).toBe('failed');
    if (!c.proxy) return;
    expect(c.outcomes(gid, '01', 'cancel')).toEqual(c.norm(['applied']));
    expect(c.outcomes(gid, '02', 'cancel')).toEqual(c.norm(['null-compensation']));
  },

  async 'msg: local commit, submit, DTM delivers the step'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    await c.dtm.message(gid, messageSteps(c), payload, `${c.proxy!.url}/query-prepared`, () => localDebit(c, gid, payload));
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '02', 'action')).toEqual(c.norm(['applied']));
    expect(c.outcomes(gid, '00', 'msg')).toEqual(c.norm([]));
  },

  async 'msg: the initiator dies before its local transaction; the check-back rolls the message back and the late local transaction is refused'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    await c.dtm.message(gid, messageSteps(c), payload, `${c.proxy!.url}/query-prepared`, async () => undefined, { dieAfterLocal: true, timeout_to_fail: 2 });
    expect(await c.verdict(gid)).toBe('failed');
    expect(c.outcomes(gid, '00', 'msg')).toEqual(c.norm(['409']));
    expect(c.outcomes(gid, '02', 'action')).toEqual(c.norm([]));
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
    expect(c.outcomes(gid, '00', 'msg')).toEqual(c.norm(['200']));
    expect(c.outcomes(gid, '02', 'action')).toEqual(c.norm(['applied']));
  },

  async 'fault: the reply to a committed action is lost; DTM retries and gets duplicate'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '02' && op === 'action' && attempt === 1 ? 'drop-reply' : undefined));
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '02', 'action')).toEqual(c.norm(['applied', 'duplicate']));
  },

  async 'fault: the reply to a confirm is lost; DTM confirms again and gets duplicate'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '01' && op === 'confirm' && attempt === 1 ? 'drop-reply' : undefined));
    expect(await tcc(c, gid, payload)).toBe(true);
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '01', 'confirm')).toEqual(c.norm(['applied', 'duplicate']));
  },

  async 'fault: an action held in the network until the saga timed out; its compensation overtakes it (null), then it lands (dangling)'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op }) => (branchId === '02' && op === 'action' ? 'hold' : undefined));
    await saga(c, gid, payload, { timeout_to_fail: 3 });
    expect(await c.verdict(gid)).toBe('failed');
    expect(c.outcomes(gid, '01', 'compensate')).toEqual(c.norm(['applied']));
    expect(c.outcomes(gid, '02', 'compensate')).toEqual(c.norm(['null-compensation']));
    await c.proxy!.release(gid);
    const late = c.outcomes(gid, '02', 'action');
    expect(late.length).toBeGreaterThan(0);
    expect(new Set(late)).toEqual(new Set(c.norm(['dangling'])));
  },

  async 'fault: an action delivered twice at once is applied once'(c) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '01' && op === 'action' && attempt === 1 ? 'duplicate' : undefined));
    await saga(c, gid, payload);
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '01', 'action').sort()).toEqual(c.norm(['applied', 'duplicate']));
  },
};

Object.assign(CASES, {
  async "workflow commits (DTM's Go workflow client as the initiator)"(c: Context) {
    const payload = transfer();
    const gid = c.begin(payload);
    expect(await c.workflow(gid, payload)).toBe(200);
    expect(await c.verdict(gid)).toBe('succeed');
    for (const branch of ['01', '02']) expect(c.outcomes(gid, branch, 'action')).toEqual(c.norm(['applied']));
  },

  async 'workflow: a branch answers FAILURE, the workflow rolls back the branch before it'(c: Context) {
    const payload = toFrozen();
    const gid = c.begin(payload);
    expect(await c.workflow(gid, payload)).toBe(409);
    expect(await c.verdict(gid)).toBe('failed');
    expect(c.outcomes(gid, '02', 'action')).toEqual(['409']);
    expect(c.outcomes(gid, '01', 'rollback')).toEqual(c.norm(['applied']));
  },

  async 'workflow: the reply to an action is lost; run again, the workflow resumes and gets duplicate'(c: Context) {
    const payload = transfer();
    const gid = c.begin(payload);
    c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '01' && op === 'action' && attempt === 1 ? 'drop-reply' : undefined));
    expect(await c.workflow(gid, payload)).toBe(500);
    expect((await c.dtm.query(gid)).status).toBe('prepared');
    expect(await c.workflow(gid, payload)).toBe(200);
    expect(await c.verdict(gid)).toBe('succeed');
    expect(c.outcomes(gid, '01', 'action')).toEqual(c.norm(['applied', 'duplicate']));
  },
} satisfies Record<string, Case>);

/** Run alone, after the others: it kills the service, which every case in flight would notice. */
export const CRASH: Case = async (c) => {
  const payload = transfer();
  const gid = c.begin(payload);
  c.proxy!.plan(gid, ({ branchId, op, attempt }) => (branchId === '02' && op === 'action' && attempt === 1 ? 'crash' : undefined));
  await saga(c, gid, payload);
  expect(await c.verdict(gid, 60_000)).toBe('succeed');
  const deliveries = c.proxy!.exchanges(gid).filter((e) => e.branchId === '02' && e.op === 'action');
  expect(deliveries[0], JSON.stringify(deliveries)).toMatchObject({ fault: 'crash' });
  expect(deliveries[0]!.status).toBeUndefined();
  expect(c.outcomes(gid, '02', 'action')).toEqual(c.norm(['applied']));
};

export const EVERY_FRONT = ['saga-compensates: a branch answers FAILURE, DTM compensates both (02 a null compensation)', 'tcc-commits: every try succeeds, DTM confirms each once'];
/** Saga and TCC, each committing and failing: what a gRPC service (no HTTP proxy, no check-back) can run. */
export const GRPC_CASES = [...EVERY_FRONT, 'saga commits', 'tcc: a try fails, DTM cancels both (02 a null compensation)'];


/** A group of cases on one engine and front (with, optionally, the Go replica beside the TypeScript service). */
export interface Group {
  engine: EngineName;
  front: Front;
  cases: string[];
  /** Also kill the service inside an action (run alone, after the others). */
  withCrash: boolean;
  /**
   * A replica of the service written with DTM's Go client (servers/go/dtm-transfer) behind the same
   * address: the proxy sends deliveries to the two in turn. gRPC has no proxy: there each branch's
   * forward op (action, try) goes to one language and its other ops to the other, branch 01 from
   * TypeScript to Go, 02 from Go to TypeScript. The barrier table is then `<run>.barrier` on
   * PostgreSQL (the constraint name `uniq_barrier` DTM's client names is unique per schema).
   */
  goReplica?: { start(config: BankConfig): Promise<TransferService>; shape: 'ours' | 'dtm' };
}

/** DTM's own barrier DDL (dtm-labs/dtm sqls/dtmcli.barrier.*.sql) for `table`, its timestamps NULL on PostgreSQL. */
function dtmBarrierDdl(engine: EngineName, table: string): string[] {
  const columns = `trans_type varchar(45) default '', gid varchar(128) default '', branch_id varchar(128) default '',
    op varchar(45) default '', barrier_id varchar(45) default '', reason varchar(45) default ''`;
  if (engine === 'mysql') {
    return [
      `create table if not exists ${table}(id bigint(22) PRIMARY KEY AUTO_INCREMENT, ${columns},
        create_time datetime DEFAULT now(), update_time datetime DEFAULT now(), key(create_time), key(update_time),
        UNIQUE key(gid, branch_id, op, barrier_id)) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`,
    ];
  }
  return [
    `CREATE SEQUENCE if not EXISTS ${table}_seq`,
    `create table if not exists ${table}(id bigint NOT NULL DEFAULT NEXTVAL ('${table}_seq'), ${columns},
      create_time timestamp(0) with time zone DEFAULT NULL, update_time timestamp(0) with time zone DEFAULT NULL,
      PRIMARY KEY(id), CONSTRAINT uniq_barrier unique(gid, branch_id, op, barrier_id))`,
  ];
}

/** Describes one group: its service started before, its cases, then the money and ledger check. */
export function describeGroup(name: string, { engine, front, cases, withCrash, goReplica }: Group): void {
  describe(name, () => {
    const dtmApi = inject('dtm')?.httpApi;
    const available = dtmApi !== undefined && (engine === 'sqlite' || hasServer(engine));
    const results: SagaResult[] = [];
    const services: TransferService[] = [];
    const stopping: Service[] = [];
    let context: Context;
    let dir: string | undefined;
    let schema: string | undefined;

    beforeAll(async () => {
      if (!available) return;
      if (engine === 'sqlite') dir = mkdtempSync(join(tmpdir(), 'txbarrier-dtm-'));
      const prefix = `dtm_${randomBytes(4).toString('hex')}`;
      if (goReplica && engine === 'postgres') schema = prefix;
      const config: BankConfig = {
        engine,
        prefix,
        ...(dir ? { sqliteFile: join(dir, 'bank.db') } : {}),
        ...(schema ? { barrierTable: `${schema}.barrier` } : {}),
      };
      const bank = await openBank(config);
      if (schema) await bank.query(`CREATE SCHEMA ${schema}`);
      if (goReplica?.shape === 'dtm') for (const statement of dtmBarrierDdl(engine, bank.store.table)) await bank.query(statement);
      await bank.create();
      services.push(await startTransferService(front, config));
      if (goReplica) services.push(await goReplica.start(config));
      // DTM's Go workflow client as the initiator of the workflow cases.
      const initiator = cases.some((name) => name.startsWith('workflow'))
        ? await startService({ command: await dtmTransferBinary(), env: { DTM_HTTP: dtmApi } })
        : undefined;
      if (initiator) stopping.push(initiator);
      const proxy = front === 'grpc' ? undefined : await faultProxy(services.map((service) => service.url));
      const base = proxy?.url ?? services[0]!.url;
      const forward = (op: string) => op === 'action' || op === 'try';
      const suppressed = new Set(['duplicate', 'null-compensation', 'dangling']);
      context = {
        dtm: new DtmInitiator(dtmApi),
        bank,
        service: services[0]!,
        ...(proxy ? { proxy } : {}),
        front,
        url: (branchId, op) => {
          if (proxy || services.length === 1) return services[0]!.branchUrl(base, branchId, op);
          const service = services[(branchId === '01') === forward(op) ? 0 : 1]!;
          return service.branchUrl(service.url, branchId, op);
        },
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
          context.norm(
            (proxy?.exchanges(gid) ?? [])
              .filter((e) => e.branchId === branchId && e.op === op && e.status !== undefined)
              .map((e) => e.outcome ?? (e.status === 200 && op !== 'msg' ? 'suppressed' : String(e.status))),
          ),
        norm: (outcomes) => (goReplica ? outcomes.map((outcome) => (suppressed.has(outcome) ? 'suppressed' : outcome)) : outcomes),
        async workflow(gid, payload) {
          const response = await fetch(`${initiator!.url}/workflow?gid=${gid}`, { method: 'POST', body: JSON.stringify({ ...payload, target: base }) });
          await response.text();
          return response.status;
        },
      };
    });

    afterAll(async () => {
      await context?.proxy?.close();
      for (const service of [...services, ...stopping]) await service.stop();
      if (context) {
        await context.bank.drop();
        if (schema) await context.bank.query(`DROP SCHEMA ${schema} CASCADE`);
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
        if (goReplica && context.proxy) {
          // Both languages served deliveries, each of them applied work (the ledger check above covers both).
          const replicas = new Set(finished.flatMap((r) => context.proxy!.exchanges(r.gid).map((e) => e.replica)));
          expect([...replicas].sort()).toEqual([0, 1]);
        }
      });
    });
  });
}
