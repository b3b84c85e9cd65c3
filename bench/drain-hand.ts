/**
 * The hand-written drainer (bench/hand-drainer.ts) in a process of its own that never loads
 * txbarrier.
 *
 *   node drain-hand.mjs '<DrainArgs as JSON>'   (with an IPC channel: `drain` commands in, one DrainResult each out)
 */
import { drainWorkerMain } from './drain-common.js';
import { handDrainer } from './hand-drainer.js';

await drainWorkerMain(handDrainer);
