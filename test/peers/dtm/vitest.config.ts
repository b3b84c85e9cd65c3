import { peerSuite } from '../suite.js';

// `npm run test:dtm`: the suites with the real DTM server as coordinator, which setup.ts starts once.
export default peerSuite('dtm', {
  test: { globalSetup: ['test/peers/dtm/setup.ts'], testTimeout: 120_000, hookTimeout: 600_000 },
});
