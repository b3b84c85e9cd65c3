/**
 * The in-process side of a Temporal test file: the SDK's own warnings (its native core's too) kept in
 * `log` to be checked, never printed; a client and a worker connection opened before the file's tests
 * and closed after. Call it once, at the top of the file.
 */
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { afterAll, beforeAll, inject } from 'vitest';

export interface Testbed {
  readonly namespace: string;
  /** The workflow bundle the setup built. */
  readonly bundle: string;
  /** What the SDK logged at WARN and above, as `LEVEL message`. */
  readonly log: string[];
  /** Set before the file's first test. */
  client: Client;
  workerConnection: NativeConnection;
}

export function temporalTestbed(): Testbed {
  const { address, namespace, bundle } = inject('temporal');
  const log: string[] = [];
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => void log.push(`${entry.level} ${entry.message}`)),
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'WARN' }, forward: {} } },
  });
  const bed = { namespace, bundle, log } as Testbed;
  let connection: Connection | undefined;
  beforeAll(async () => {
    connection = await Connection.connect({ address });
    bed.client = new Client({ connection, namespace });
    bed.workerConnection = await NativeConnection.connect({ address });
  });
  afterAll(async () => {
    await connection?.close();
    await bed.workerConnection?.close();
  });
  return bed;
}
