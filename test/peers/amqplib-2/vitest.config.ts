import { peerSuite } from '../suite.js';

// amqplib 2 (in the peer range, installed as the `amqplib2` alias) in place of 0.10.
export default peerSuite('amqplib-2', { resolve: { alias: [{ find: /^amqplib$/, replacement: 'amqplib2' }] } });
