import { peerSuite } from '../suite.js';

// `npm run test:restate`: against a Restate server that setup.ts starts (Node >= 22; see setup.ts).
export default peerSuite('restate', {
  test: {
    globalSetup: ['test/peers/restate/setup.ts'],
    testTimeout: 120_000,
    // A machine's first run fetches the server (about 50 MB).
    hookTimeout: 300_000,
    // One file at a time: the kill test's service processes and the sagas' timings share two cores.
    fileParallelism: false,
  },
});
