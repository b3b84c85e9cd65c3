/**
 * The `Notes` rpcs without a `.proto`: a hand-written service definition whose messages travel as
 * JSON. No vitest in here, so the chaos run's service process can serve it too.
 */
import type * as grpc from '@grpc/grpc-js';

export const METHODS = ['Note', 'Fail', 'Ongoing', 'Conflict', 'Broken', 'Unreported', 'QueryPrepared'] as const;
export type Method = (typeof METHODS)[number];

/** A service definition object for `methods`, each a unary call with JSON messages. */
export function jsonService(methods: readonly string[] = METHODS): grpc.ServiceDefinition {
  const serialize = (value: unknown) => Buffer.from(JSON.stringify(value ?? {}));
  const deserialize = (bytes: Buffer) => (bytes.length === 0 ? {} : JSON.parse(bytes.toString()));
  return Object.fromEntries(
    methods.map((name) => [
      name,
      {
        path: `/txbarrier.test.JsonNotes/${name}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: serialize,
        requestDeserialize: deserialize,
        responseSerialize: serialize,
        responseDeserialize: deserialize,
        originalName: name[0]!.toLowerCase() + name.slice(1),
      },
    ]),
  );
}
