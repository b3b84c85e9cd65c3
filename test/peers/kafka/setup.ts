/**
 * Starts the Kafka test broker once for the Kafka suite (or uses TXBARRIER_KAFKA_BROKERS) and hands
 * its address to the test files and their child processes. A broker that cannot be built or
 * started fails the run: `npm run test:kafka` is asked for by name.
 */
import { startKafkaBroker } from '../../../servers/kafka.js';

export default async function setup(): Promise<() => Promise<void>> {
  const broker = await startKafkaBroker();
  process.env.TXBARRIER_KAFKA_BROKERS = broker.brokers.join(',');
  return () => broker.stop();
}
