/**
 * `npm run peers:build`: builds every Go peer the heavy suites start (or finds it cached: go-build.sh),
 * one after another, printing each one's time. CI runs it beside the first test runs (.ci/run), with
 * `GOFLAGS=-p=1` so that a cold build takes one core and leaves the other to the tests; a suite that
 * starts a peer would otherwise build it inside its own step.
 */
import { dtmBinary, dtmTransferBinary } from './dtm.js';
import { kafkaBrokerBinary } from './kafka.js';
import { temporalBinary } from './temporal.js';

const PEERS: Record<string, () => Promise<string>> = {
  dtm: dtmBinary,
  'dtm-transfer': dtmTransferBinary,
  temporal: temporalBinary,
  'kafka-broker': kafkaBrokerBinary,
};

for (const [name, build] of Object.entries(PEERS)) {
  const started = performance.now();
  const binary = await build();
  console.log(`${name}: ${binary} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
