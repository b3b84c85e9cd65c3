import { peerSuite } from '../suite.js';

// `npm run test:galera`: each file starts a three-node Galera cluster of its own (servers/galera.ts);
// one file at a time, since three mariadbd and the tests share two cores.
export default peerSuite('galera', { test: { testTimeout: 300_000, hookTimeout: 300_000, fileParallelism: false } });
