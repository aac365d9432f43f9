// A TCP relay on loopback in front of a server, counting the bytes the server sends: what a
// client cost the origin, counted the same way for the agent and for a reference tool (HTTP,
// S3, git://). Stopped with the test, as every helper server is.
import { connect, createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { listenOnLoopback } from './listen.js';

export interface CountingRelay {
  port: number;
  /** Bytes sent by the server to clients since the last reset. */
  bytes: number;
  reset(): void;
}

export async function startCountingRelay(t: Pick<TestContext, 'after'>, targetPort: number): Promise<CountingRelay> {
  const relay: CountingRelay = { port: 0, bytes: 0, reset: () => void (relay.bytes = 0) };
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    upstream.on('data', (chunk: Buffer) => (relay.bytes += chunk.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
  });
  relay.port = await listenOnLoopback(t, server);
  return relay;
}
