/**
 * The gRPC front's test kit: the `Notes` service of `notes.proto` served two ways (loaded
 * by `@grpc/proto-loader`, and as a hand-written service definition with JSON serializers), a
 * client call that reads the status, the reply and the outcome trailer, and the engines.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { OUTCOME_TRAILER } from '../../../adapters/grpc.js';
import { BarrierFailure, BarrierOngoing } from '../../../src/index.js';
import { type ConflictEngine, conflictEngines } from '../../support/conflict-engines.js';
import { jsonService } from './json.js';

export const NOTES_PROTO = fileURLToPath(new URL('./notes.proto', import.meta.url));

export { jsonService, METHODS, type Method } from './json.js';

/** The `Notes` service from the `.proto` file, as `@grpc/proto-loader` loads it. */
export function protoService(): grpc.ServiceDefinition {
  const loaded = grpc.loadPackageDefinition(loadSync(NOTES_PROTO, { defaults: true })) as any;
  return loaded.txbarrier.test.Notes.service;
}

export interface GrpcServing {
  client: grpc.Client;
  close(): Promise<void>;
}

/** Serves `handlers` for `definition` on a free loopback port, with a client of it. */
export async function serveGrpc(definition: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation): Promise<GrpcServing> {
  const server = new grpc.Server();
  server.addService(definition, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  const Client = grpc.makeGenericClientConstructor(definition, 'Notes');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    client,
    close: async () => {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

/** What a call came back with: the status, its details, the reply, and the outcome trailer. */
export interface Answer {
  code: grpc.status;
  details: string;
  reply: unknown;
  outcome: string | undefined;
}

/** The `dtm-*` metadata DTM's gRPC transport sends for one branch. */
export function dtmMetadata(fields: Partial<Record<'gid' | 'trans_type' | 'branch_id' | 'op', string | string[]>>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [name, value] of Object.entries(fields)) {
    for (const one of [value].flat()) metadata.add(`dtm-${name}`, one);
  }
  return metadata;
}

/** One unary call; resolves once the status (and its trailer) arrived. Never rejects. */
export function callGrpc(client: grpc.Client, method: string, request: unknown, metadata: grpc.Metadata): Promise<Answer> {
  const rpc = (client as unknown as Record<string, Function>)[method]!.bind(client);
  return new Promise((resolve) => {
    let reply: unknown;
    const call = rpc(request, metadata, { deadline: Date.now() + 10_000 }, (_error: unknown, value: unknown) => (reply = value));
    call.on('status', (status: grpc.StatusObject) => {
      resolve({ code: status.code, details: status.details, reply, outcome: status.metadata.get(OUTCOME_TRAILER)[0]?.toString() });
    });
  });
}

/**
 * An answer as DTM's gRPC client reads it (`GrpcError2DtmError`), in the form a `runChaos`
 * function handler gives it: the outcome on OK, `BarrierFailure` for ABORTED, `BarrierOngoing`
 * for FAILED_PRECONDITION, any other status an error.
 */
export function asHandlerResult({ code, details, outcome }: Answer): { outcome: string | undefined } {
  if (code === grpc.status.OK) return { outcome };
  if (code === grpc.status.ABORTED) throw new BarrierFailure(details);
  if (code === grpc.status.FAILED_PRECONDITION) throw new BarrierOngoing(details);
  throw new Error(`gRPC status ${code}: ${details}`);
}

export type GrpcEngine<Tx> = ConflictEngine<Tx>;
export const ENGINES = conflictEngines('grpc');
