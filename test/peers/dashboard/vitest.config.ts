import { peerSuite } from '../suite.js';

// A browser on a loaded 2-core machine, and tables of 100k rows filled per engine: more room than the default 30 s.
export default peerSuite('dashboard', { test: { testTimeout: 120_000, hookTimeout: 300_000 } });
