/**
 * The SDK's barrier (bench/sdk-barrier.ts) in a process of its own. It is bundled twice: as is
 * (the SDK finds `@opentelemetry/api`, a devDependency, and runs its no-op span path) and with that
 * package made unresolvable, as for a user who has not installed it.
 *
 *   node sdk.mjs '<WorkerArgs as JSON>'   (with an IPC channel: commands in, one WorkerResult per warm/round out)
 */
import { sdkOp } from './sdk-barrier.js';
import { workerMain } from './worker-common.js';

await workerMain(sdkOp);
