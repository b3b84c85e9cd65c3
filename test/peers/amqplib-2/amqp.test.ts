/**
 * The default suite's RabbitMQ consumer and outbox relay tests on amqplib 2, the newer major of the
 * peer range (the default suite runs 0.10). A consumer the tests start in a child process loads
 * amqplib itself, so that one is 0.10.
 */
import amqp from 'amqplib';
import { expect, it } from 'vitest';
import '../../consumers/amqp.test.js';
import '../../outbox/relay.test.js';

it('runs on amqplib 2 (the alias took effect: connect() takes the connection-recovery option 0.10 lacks)', () => {
  expect(amqp.connect.toString()).toContain('recovery');
});
