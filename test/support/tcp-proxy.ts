/** A TCP proxy in front of a broker, so a test can drop the client's connection as a network would. */
import { createServer, connect, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Destroys every open connection (both sides); the proxy keeps listening, so clients may reconnect. */
  drop(): void;
  /**
   * Stops forwarding on every open connection, without closing anything: a half-open connection or
   * a frozen peer. `'replies'` stops only what the server sends (the client's publishes still
   * arrive; their confirms are lost). Bytes not forwarded are lost; new connections are forwarded.
   * Defaults to both ways.
   */
  stall(direction?: 'both' | 'replies'): void;
  close(): Promise<void>;
}

export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const upstreams = new WeakSet<Socket>();
  const stalled = new WeakSet<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    upstreams.add(upstream);
    track(client);
    track(upstream);
    const forward = (from: Socket, to: Socket) => from.on('data', (chunk) => stalled.has(from) || to.write(chunk));
    forward(client, upstream);
    forward(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const drop = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as { port: number }).port,
    drop,
    stall: (direction = 'both') => {
      for (const socket of sockets) if (direction === 'both' || upstreams.has(socket)) stalled.add(socket);
    },
    close: () =>
      new Promise<void>((resolve) => {
        drop();
        server.close(() => resolve());
      }),
  };
}
