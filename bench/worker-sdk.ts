/**
 * The SDK's barrier (bench/sdk-barrier.ts) in a process of its own.
 *
 *   node sdk.mjs '<WorkerArgs as JSON>'   → one line of WorkerResult JSON
 */
import { sdkOp } from './sdk-barrier.js';
import { workerMain } from './worker-common.js';

await workerMain(sdkOp);
