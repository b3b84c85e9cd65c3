/** What every consumer subpath (`txbarrier/amqp`, `/nats`, `/bullmq`) exports from the broker-neutral core. */
export {
  BarrierConsumerConfigError,
  BarrierMessageIdError,
  BarrierShutdownTimeout,
  type ConsumerOptions,
  type DeadLetterReason,
  messageBarrier,
  type SettledEvent,
  type Settlement,
} from '../../src/messaging/consumer.js';
