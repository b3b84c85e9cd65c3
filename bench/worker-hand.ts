/**
 * The hand-written barrier (bench/hand-barrier.ts) in a process of its own that never loads
 * txbarrier.
 *
 *   node hand.mjs '<WorkerArgs as JSON>'   → one line of WorkerResult JSON
 */
import { handOp } from './hand-barrier.js';
import { workerMain } from './worker-common.js';

await workerMain(handOp);
