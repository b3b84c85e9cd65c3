/**
 * The nodes of a RabbitMQ cluster, as the AMQP consumer and publisher reach them: amqplib connects
 * to one URL, so the adapters call the user's `connect(url)` with each of `urls` in turn.
 */
import { BarrierConfigError } from '../../../src/errors.js';

/**
 * A function opening a connection to the next node: it tries each of `urls` in turn, starting
 * after the node the previous connection went to (the one that just dropped may be the one that
 * died), and rejects, with the last node's error as the cause, when none answers. Without `urls`, `connect` is called
 * with no argument (`() => amqp.connect(url)` of one node).
 */
export function nodeConnector<C>(connect: (url: string) => Promise<C>, urls: readonly string[] | undefined, what: string): () => Promise<C> {
  if (urls === undefined) return () => (connect as () => Promise<C>)();
  if (!Array.isArray(urls) || urls.length === 0 || !urls.every((url) => typeof url === 'string' && url !== '')) {
    // The URLs may hold credentials: the message names their shape, never their text.
    throw new BarrierConfigError(`${what}: urls must be a non-empty array of non-empty strings (one per node)`, { code: 'ERR_TXBARRIER_OPTION' });
  }
  let next = 0;
  return async () => {
    let lastError: unknown;
    for (let tried = 0; tried < urls.length; tried++) {
      const index = (next + tried) % urls.length;
      try {
        const connection = await connect(urls[index]!);
        next = (index + 1) % urls.length;
        return connection;
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`${what}: none of the ${urls.length} nodes accepted a connection; the last said: ${lastError instanceof Error ? lastError.message : String(lastError)}`, { cause: lastError });
  };
}
