/** A TCP proxy in front of a broker, so a test can drop the client's connection as a network would. */
import { createServer, connect, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Destroys every open connection (both sides); the proxy keeps listening, so clients may reconnect. */
  drop(): void;
  /**
   * Stops forwarding on every open connection, both ways, without closing anything: a half-open
   * connection or a frozen peer. Bytes sent meanwhile are lost; new connections are forwarded.
   */
  stall(): void;
  close(): Promise<void>;
}

export async function tcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const stalled = new WeakSet<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
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
    stall: () => {
      for (const socket of sockets) stalled.add(socket);
    },
    close: () =>
      new Promise<void>((resolve) => {
        drop();
        server.close(() => resolve());
      }),
  };
}
