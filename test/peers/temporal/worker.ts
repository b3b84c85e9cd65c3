/**
 * A Temporal worker in a child process, for the kill test. The moment an activity's transaction
 * has committed for a workflow on the kill list, and before the activity returns (so before the
 * worker reports its completion to the server), it SIGKILLs itself: the server sees the attempt
 * time out and runs the activity again, on the next worker. It says `killed <workflow id>` first.
 * SIGTERM shuts it down cleanly. Warnings and errors of the SDK go to stderr, one JSON line each.
 */
import { writeSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { bankActivities } from './activities.js';
import { type BankSpec, openBank } from '../bank.js';

export interface WorkerArgs {
  address: string;
  namespace: string;
  taskQueue: string;
  bundle: string;
  bank: BankSpec;
  /** Workflow ids whose debit step kills the worker right after its commit (the parent drops those already killed). */
  kill: string[];
  guarded: boolean;
}

const args = JSON.parse(process.argv[2]!) as WorkerArgs;
Runtime.install({
  // One JSON line per entry on stderr, which the test reads.
  logger: new DefaultLogger('WARN', ({ level, message }) => void writeSync(2, `${JSON.stringify({ level, message })}\n`)),
  telemetryOptions: { logging: { filter: { core: 'WARN', other: 'WARN' }, forward: {} } },
});
const bank = await openBank(args.bank);
const kill = new Set(args.kill);
const activities = bankActivities(bank, {
  guarded: args.guarded,
  afterCommit: (workflowId, step, outcome) => {
    if (outcome !== 'applied' || step !== 'debit' || !kill.has(workflowId)) return;
    writeSync(1, `killed ${workflowId}\n`);
    // Synchronous: the signal lands before the activity can return its result.
    process.kill(process.pid, 'SIGKILL');
  },
});
const connection = await NativeConnection.connect({ address: args.address });
const worker = await Worker.create({
  connection,
  namespace: args.namespace,
  taskQueue: args.taskQueue,
  workflowBundle: { codePath: args.bundle },
  activities,
  // No sticky cache: after a kill, workflow tasks go to the next worker at once.
  maxCachedWorkflows: 0,
});
writeSync(1, 'ready\n');
await worker.run();
await connection.close();
await bank.close();
