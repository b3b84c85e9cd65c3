/**
 * The gRPC front over real gRPC, on every engine, for a service loaded from a `.proto` file and for
 * a hand-written service definition: the protocol table's rows as DTM's gRPC client reads them,
 * bad metadata named field by field with nothing written, an internal error reported and never
 * sent, and the check-back with its race against the local transaction.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BarrierCall, barrierHandler, queryPreparedHandler } from '../../../adapters/grpc.js';
import { Barrier, BarrierDuplicateMessage, BarrierFailure, BarrierOngoing } from '../../../src/index.js';
import { type Answer, callGrpc, dtmMetadata, ENGINES, type GrpcEngine, type GrpcServing, jsonService, type Method, protoService, serveGrpc } from './front.js';
import { holdOpen } from '../../support/server-harness.js';

const SERVICES = [
  ['.proto via proto-loader', protoService],
  ['a service definition object', jsonService],
] as const;

interface NoteRequest {
  reply?: string;
  message?: string;
}

describe.each(ENGINES)('grpc on %s', (_, available, open) => {
  describe.skipIf(!available()).each(SERVICES)('%s', (_kind, definition) => {
    let h: GrpcEngine<any>;
    let serving: GrpcServing;
    const reported: unknown[] = [];
    const gidOf = () => `grpc-${randomUUID()}`;
    const branch = (gid: string, op: string, transType = 'saga', branchId = '01') =>
      dtmMetadata({ gid, trans_type: transType, branch_id: branchId, op });
    const call = (method: Method, request: NoteRequest, metadata = branch(gidOf(), 'action')): Promise<Answer> =>
      callGrpc(serving.client, method, request, metadata);
    const nothingWritten = async (gid: string) => {
      expect(await h.barrierRows(gid)).toEqual([]);
      expect(await h.notes(gid)).toEqual([]);
    };

    beforeAll(async () => {
      h = await open();
      serving = await serveGrpc(definition(), {
        Note: barrierHandler(h.store, async (tx, call: BarrierCall<NoteRequest, unknown>) => {
          await h.record(tx, call.barrier.gid, call.barrier.op);
          return { reply: call.request.reply };
        }),
        Fail: barrierHandler(h.store, async (tx, call: BarrierCall<NoteRequest, unknown>) => {
          await h.record(tx, call.barrier.gid, 'half-done');
          throw new BarrierFailure(call.request.message ?? '');
        }),
        Ongoing: barrierHandler(h.store, () => {
          throw new BarrierOngoing('inventory not ready');
        }),
        Conflict: barrierHandler(h.store, async (tx, call: BarrierCall<NoteRequest, unknown>) => {
          await h.record(tx, call.barrier.gid, 'before the conflict');
          await h.conflict(tx);
        }),
        Broken: barrierHandler(
          h.store,
          async (tx, call: BarrierCall<NoteRequest, unknown>) => {
            await h.record(tx, call.barrier.gid, 'half-done');
            throw new Error('relation "secret_table" does not exist: SELECT secret_column FROM secret_table');
          },
          { onError: (error) => reported.push(error) },
        ),
        Unreported: barrierHandler(h.store, () => {
          throw new Error('nobody listens: SELECT secret_column');
        }),
        QueryPrepared: queryPreparedHandler(h.store),
      });
    });

    afterAll(async () => {
      await serving?.close();
      await h?.close();
    });

    describe('protocol', () => {
      it('applied: OK with the reply; again: OK, duplicate, an empty reply; the work applied once', async () => {
        const gid = gidOf();
        const first = await call('Note', { reply: 'balance 70' }, branch(gid, 'action'));
        expect(first).toMatchObject({ code: status.OK, outcome: 'applied', reply: { reply: 'balance 70' } });
        const again = await call('Note', { reply: 'balance 70' }, branch(gid, 'action'));
        expect(again).toMatchObject({ code: status.OK, outcome: 'duplicate' });
        expect((again.reply as NoteRequest).reply ?? '').toBe('');
        expect(await h.notes(gid)).toEqual(['action']);
      });

      it('null compensation, then the dangling action: OK for both, neither applied', async () => {
        const gid = gidOf();
        expect(await call('Note', {}, branch(gid, 'compensate'))).toMatchObject({ code: status.OK, outcome: 'null-compensation' });
        expect(await call('Note', {}, branch(gid, 'action'))).toMatchObject({ code: status.OK, outcome: 'dangling' });
        expect(await h.notes(gid)).toEqual([]);
      });

      it('reads the branch, op and transaction type from the metadata', async () => {
        const gid = gidOf();
        expect(await call('Note', {}, branch(gid, 'try', 'tcc', '02'))).toMatchObject({ code: status.OK, outcome: 'applied' });
        expect((await h.barrierRows(gid)).map((row) => [row.trans_type, row.branch_id, row.op])).toEqual([['tcc', '02', 'try']]);
      });

      it('BarrierFailure: ABORTED (DTM reads FAILURE) with its message, rolled back', async () => {
        const gid = gidOf();
        expect(await call('Fail', { message: 'insufficient funds' }, branch(gid, 'action'))).toMatchObject({
          code: status.ABORTED,
          details: 'insufficient funds',
        });
        await nothingWritten(gid);
      });

      it('a failure whose message is the bare word ONGOING is never read as ONGOING', async () => {
        const answer = await call('Fail', { message: 'ONGOING' });
        expect(answer.code).toBe(status.ABORTED);
        expect(answer.details).not.toBe('ONGOING');
      });

      it('BarrierOngoing: FAILED_PRECONDITION (DTM reads ONGOING)', async () => {
        expect(await call('Ongoing', {})).toMatchObject({ code: status.FAILED_PRECONDITION });
      });

      it("a retryable conflict raised by the server in the handler's own SQL: FAILED_PRECONDITION, rolled back", async () => {
        const gid = gidOf();
        expect(await call('Conflict', {}, branch(gid, 'action'))).toMatchObject({ code: status.FAILED_PRECONDITION });
        await nothingWritten(gid);
      });
    });

    describe('bad metadata: INVALID_ARGUMENT naming every bad field, nothing written', () => {
      it('repeated, empty and wrong fields', async () => {
        const gid = gidOf();
        const answer = await call('Note', { reply: 'never' }, dtmMetadata({ gid: [gid, `${gid}-b`], trans_type: 'saga', branch_id: '', op: 'undo' }));
        expect(answer.code).toBe(status.INVALID_ARGUMENT);
        expect(answer.details).toBe(
          'invalid barrier request: gid is repeated; branch_id is empty; op is not an op of saga (action, compensate)',
        );
        await nothingWritten(gid);
      });

      it('no dtm-* metadata at all', async () => {
        const answer = await call('Note', {}, dtmMetadata({}));
        expect(answer.code).toBe(status.INVALID_ARGUMENT);
        expect(answer.details).toMatch(/^invalid barrier request: trans_type .*; gid .*; branch_id .*; op /);
      });
    });

    describe('errors: INTERNAL with nothing leaked, always reported', () => {
      it('hands the error to onError and rolls back', async () => {
        reported.length = 0;
        const gid = gidOf();
        expect(await call('Broken', {}, branch(gid, 'action'))).toMatchObject({ code: status.INTERNAL, details: 'internal error' });
        expect(reported.map((e) => (e as Error).message)).toEqual([expect.stringContaining('secret_table')]);
        await nothingWritten(gid);
      });

      it('without onError or a logger, a process warning', async () => {
        const warnings: Error[] = [];
        const listen = (warning: Error) => warnings.push(warning);
        process.on('warning', listen);
        try {
          expect(await call('Unreported', {})).toMatchObject({ code: status.INTERNAL, details: 'internal error' });
          await new Promise((resolve) => setImmediate(resolve));
        } finally {
          process.off('warning', listen);
        }
        expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([expect.stringMatching(/^TxbarrierWarning: .*nobody listens/)]);
      });
    });

    describe('the check-back', () => {
      const check = (metadata: ReturnType<typeof dtmMetadata>) => callGrpc(serving.client, 'QueryPrepared', {}, metadata);
      const asDtm = (gid: string) => branch(gid, 'msg', 'msg', '00');

      it('OK for a committed message, by DTM metadata or a bare dtm-gid', async () => {
        const gid = gidOf();
        await Barrier.forMessage(gid).call(h.store, (tx) => h.record(tx, gid, 'msg'));
        expect((await check(asDtm(gid))).code).toBe(status.OK);
        expect((await check(dtmMetadata({ gid }))).code).toBe(status.OK);
      });

      it('ABORTED for a message that never ran, and the late local transaction is refused', async () => {
        const gid = gidOf();
        expect((await check(asDtm(gid))).code).toBe(status.ABORTED);
        await expect(Barrier.forMessage(gid).call(h.store, () => 'late')).rejects.toBeInstanceOf(BarrierDuplicateMessage);
        expect(await h.notes(gid)).toEqual([]);
      });

      it('INVALID_ARGUMENT without a gid, for another transaction type, or for a repeated dtm-gid', async () => {
        expect((await check(dtmMetadata({}))).code).toBe(status.INVALID_ARGUMENT);
        const gid = gidOf();
        expect(await check(branch(gid, 'action'))).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('trans_type') });
        expect(await check(dtmMetadata({ gid: [gid, `${gid}-b`] }))).toMatchObject({
          code: status.INVALID_ARGUMENT,
          details: 'invalid barrier request: gid is repeated',
        });
        await nothingWritten(gid);
        await nothingWritten(`${gid}-b`);
      });

      it.each(['commit', 'rollback'] as const)('waits for a local transaction still open, then answers what it did: %s', async (end) => {
        const gid = gidOf();
        const held = holdOpen(h.store);
        const local = Barrier.forMessage(gid).call(held.store, (tx) => h.record(tx, gid, 'msg'));
        local.catch(() => undefined);
        await held.entered;
        const asked = Date.now();
        const answer = check(asDtm(gid));
        await new Promise((resolve) => setTimeout(resolve, 300));
        held[end]();
        const { code } = await answer;
        expect(Date.now() - asked).toBeGreaterThanOrEqual(290);
        expect(code).toBe(end === 'commit' ? status.OK : status.ABORTED);
        if (end === 'commit') await local;
        else await expect(local).rejects.toThrow();
        expect(await h.notes(gid)).toEqual(end === 'commit' ? ['msg'] : []);
      });
    });
  });
});
