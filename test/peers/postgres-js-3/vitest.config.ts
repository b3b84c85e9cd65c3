import { peerSuite } from '../suite.js';

// postgres.js 3 (still in the peer range, installed as the `postgres3` alias) in place of 4.
export default peerSuite('postgres-js-3', { resolve: { alias: [{ find: /^postgres$/, replacement: 'postgres3' }] } });
