/** `txbarrier/outbox`: the outbox, enqueued inside the business transaction, and the relay that publishes what committed. */
export * from './outbox.js';
export {
  createRelay,
  type OutboxDelivery,
  type OutboxListener,
  type OutboxPublisher,
  type Relay,
  type RelayEvent,
  type RelayOptions,
  type RetryPolicy,
} from './relay.js';
export { uuidv7 } from './id.js';
