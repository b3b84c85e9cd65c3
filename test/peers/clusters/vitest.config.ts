import { peerSuite } from '../suite.js';

// One cluster at a time (three Erlang VMs are heavy on two cores); a node's start and a leader election take seconds.
export default peerSuite('clusters', { test: { fileParallelism: false, testTimeout: 600_000, hookTimeout: 300_000 } });
