// A TCP relay in front of a loopback server, counting what the server sends: the bytes a
// client cost the origin, the same way for ours and for the reference tool (HTTP, S3, git://).
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface CountingProxy {
  port: number;
  /** Connections accepted and bytes sent from the server to clients since the last reset. */
  readonly stats: { connections: number; bytes: number };
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  const stats = { connections: 0, bytes: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    stats.connections++;
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    upstream.on('data', (chunk: Buffer) => (stats.bytes += chunk.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    reset: () => Object.assign(stats, { connections: 0, bytes: 0 }),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => server.close(done));
    },
  };
}
