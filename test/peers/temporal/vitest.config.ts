import { peerSuite } from '../suite.js';

// `npm run test:temporal`: against a Temporal dev server that setup.ts starts (and builds once per machine).
export default peerSuite('temporal', {
  test: {
    globalSetup: ['test/peers/temporal/setup.ts'],
    testTimeout: 60_000,
    // A machine's first run builds the server from source: minutes.
    hookTimeout: 1_200_000,
    // One file at a time: the kill test's workers and the sagas' timings share two cores.
    fileParallelism: false,
  },
});
