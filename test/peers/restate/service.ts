/**
 * The Restate suite's service endpoint in a child process, for the kill test. The moment a step's
 * transaction has committed for a transfer on the kill list, and before its `ctx.run` action returns
 * (so before the SDK proposes the step's result to Restate), it SIGKILLs itself: Restate sees the
 * attempt fail and retries the invocation on the replacement process, whose replay runs the step
 * again. It says `killed <transfer>` first, and `ready` once it listens. SIGTERM stops it cleanly.
 * The SDK's warnings and errors go to stderr, one JSON line each.
 */
import { writeSync } from 'node:fs';
import * as restate from '@restatedev/restate-sdk';
import { type BankSpec, openBank } from '../bank.js';
import { bankService } from './services.js';

export interface ServiceArgs {
  /** The service name to serve (registered once by the test). */
  name: string;
  port: number;
  bank: BankSpec;
  /** `<transfer>/<step>` pairs whose commit kills the process (the parent drops those already killed). */
  kill: string[];
  guarded: boolean;
}

const args = JSON.parse(process.argv[2]!) as ServiceArgs;
const bank = await openBank(args.bank);
const kill = new Set(args.kill);
const service = bankService(args.name, bank, {
  guarded: args.guarded,
  afterCommit: (transfer, step, outcome) => {
    // Any outcome: when another kill orphaned this step's first commit, its rerun (`duplicate`) is killed instead, so every kill happens.
    if (!kill.has(`${transfer}/${step}`)) return;
    writeSync(1, `killed ${transfer}/${step}\n`);
    // Synchronous: the signal lands before the action can return its result.
    process.kill(process.pid, 'SIGKILL');
  },
});
await restate.serve({
  services: [service],
  port: args.port,
  logger: (meta, message, ...rest) => {
    if (['warn', 'error'].includes(meta.level)) writeSync(2, `${JSON.stringify({ level: meta.level, message: [message, ...rest].map(String).join(' ') })}\n`);
  },
});
writeSync(1, 'ready\n');
process.once('SIGTERM', () => void bank.close().then(() => process.exit(0)));
