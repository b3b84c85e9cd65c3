/**
 * The hand-written barrier (bench/hand-barrier.ts) in a process of its own that never loads
 * txbarrier.
 *
 *   node hand.mjs '<WorkerArgs as JSON>'   (with an IPC channel: commands in, one WorkerResult per warm/round out)
 */
import { handOp } from './hand-barrier.js';
import { workerMain } from './worker-common.js';

await workerMain(handOp);
