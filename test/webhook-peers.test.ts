// Peers that reach http-listen without the webhook secret: they are refused before their bodies
// are read, cannot hold more connections or body bytes than the caps, are dropped when too slow,
// and their refusals are logged as one line per interval with a count. A real server on port 0,
// raw sockets for the peers, an injected clock for the log.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { AgentMetrics, defaultHttpLimits, startHealthServer, type HealthServer, type HttpLimits } from '../src/daemon/health-server.js';
import { createLogger } from '../src/base/log.js';
import { maxWebhookBodyBytes } from '../src/daemon/webhook.js';

const secret = 'webhook-secret-for-tests-0123456789';

interface Started {
  server: HealthServer;
  port: number;
  lines: string[];
  checks: () => number;
  setTime(ms: number): void;
}

async function start(t: TestContext, limits: Partial<HttpLimits> = {}, maxBytesInFlight?: number): Promise<Started> {
  let time = Date.parse('2026-01-01T00:00:00.000Z');
  let checks = 0;
  const lines: string[] = [];
  const log = createLogger({ verbose: false, write: (line) => lines.push(line) });
  const server = await startHealthServer(
    { host: '127.0.0.1', port: 0 },
    new AgentMetrics(3),
    log,
    { secret, minIntervalMs: 1, now: () => new Date(time), requestCheck: () => checks++, log, maxBytesInFlight },
    { ...defaultHttpLimits, ...limits },
  );
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as { port: number }).port;
  return { server, port, lines, checks: () => checks, setTime: (ms) => (time = ms) };
}

/** A raw connection: what it has received so far, and a wait for the first status line or the close. */
function peer(t: TestContext, port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  let closed = false;
  const waiters = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
    for (const waiter of [...waiters]) waiter();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
    for (const waiter of [...waiters]) waiter();
  });
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return {
    socket,
    connected,
    send: (text: string) => socket.write(text),
    /** The status of the first response, or "closed" when the server closed without one. */
    status: () =>
      new Promise<string>((resolve) => {
        const check = () => {
          const line = /^HTTP\/1\.1 (\d{3})/.exec(received);
          if (line) resolve(line[1] as string);
          else if (closed) resolve('closed');
          else return;
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    closed: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        socket.once('close', () => resolve());
      }),
  };
}

const head = (headers: Record<string, string | number>) =>
  `POST /check HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;

test('a POST /check without the secret is refused at once, before its body is sent; a token is checked before any body', async (t) => {
  const s = await start(t);
  const length = maxWebhookBodyBytes - 1;
  // Headers only: a server that waits for the 1 MiB body before looking at credentials never answers.
  const anonymous = peer(t, s.port);
  anonymous.send(head({ 'content-length': length }));
  assert.equal(await anonymous.status(), '401');
  await anonymous.closed();
  const wrongToken = peer(t, s.port);
  wrongToken.send(head({ 'content-length': length, authorization: 'Bearer not-the-secret-at-all-000000' }));
  assert.equal(await wrongToken.status(), '401');
  const wrongGitlab = peer(t, s.port);
  wrongGitlab.send(head({ 'content-length': length, 'x-gitlab-token': 'not-the-secret-at-all-000000' }));
  assert.equal(await wrongGitlab.status(), '401');
  assert.equal(s.checks(), 0);
  const rightToken = peer(t, s.port);
  rightToken.send(head({ 'content-length': length, 'x-gitlab-token': secret }));
  assert.equal(await rightToken.status(), '202');
  assert.equal(s.checks(), 1);
  const declaredTooLarge = peer(t, s.port);
  declaredTooLarge.send(head({ 'content-length': maxWebhookBodyBytes + 1, 'x-hub-signature-256': 'sha256=00' }));
  assert.equal(await declaredTooLarge.status(), '413');
});

test('bodies being read at once are capped: past the budget a request gets 503 at once, and the budget comes back', async (t) => {
  const s = await start(t, {}, 2 * maxWebhookBodyBytes);
  const signed = (body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const holders = [peer(t, s.port), peer(t, s.port)];
  for (const holder of holders) holder.send(head({ 'content-length': maxWebhookBodyBytes, 'x-hub-signature-256': 'sha256=00' }) + 'x'.repeat(100));
  await Promise.all(holders.map((holder) => holder.connected));
  // The server must have reserved both before the third arrives: the third is sent once the
  // first two bodies are being read, which the server's connection count cannot say; so the
  // third is retried until refused (each try is refused or reserved at once, never waits).
  let third = '';
  for (let attempt = 0; attempt < 100 && third !== '503'; attempt++) {
    const extra = peer(t, s.port);
    extra.send(head({ 'content-length': 2, 'x-hub-signature-256': signed('{}') }) + '{}');
    third = await extra.status();
    assert.ok(third === '503' || third === '202', third);
  }
  assert.equal(third, '503');
  // One reader finishes (a wrong signature): its share of the budget is given back before it is answered.
  (holders[0] as ReturnType<typeof peer>).send('x'.repeat(maxWebhookBodyBytes - 100));
  assert.equal(await (holders[0] as ReturnType<typeof peer>).status(), '401');
  const after = peer(t, s.port);
  after.send(head({ 'content-length': 2, 'x-hub-signature-256': signed('{}') }) + '{}');
  assert.equal(await after.status(), '202');
});

test('connections past the cap are closed at once; a peer that sends its headers too slowly is dropped', async (t) => {
  const s = await start(t, { maxConnections: 3, headersTimeoutMs: 200, requestTimeoutMs: 400 });
  const idle = [peer(t, s.port), peer(t, s.port), peer(t, s.port)];
  await Promise.all(idle.map((connection) => connection.connected));
  for (const connection of idle) connection.send('POST /check HTTP/1.1\r\n');
  // Wait until the server counts all three (it accepts asynchronously).
  for (let count = 0; count < 3; ) {
    count = await new Promise<number>((resolve) => s.server.getConnections((_error, n) => resolve(n)));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const fourth = peer(t, s.port);
  fourth.send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(await fourth.status(), 'closed', 'the fourth connection is closed without an answer');
  // The three that never finish their headers are dropped by the server (408, then closed).
  for (const connection of idle) {
    await connection.closed();
    assert.match(await connection.status(), /^(408|closed)$/);
  }
  const healthz = peer(t, s.port);
  healthz.send('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(await healthz.status(), '200');
});

test('refusals are logged as one line per interval with a count (an injected clock), never one line each', async (t) => {
  const s = await start(t);
  const start0 = Date.parse('2026-01-01T00:00:00.000Z');
  for (let request = 0; request < 50; request++) {
    const anonymous = peer(t, s.port);
    anonymous.send(head({ 'content-length': 0 }));
    assert.equal(await anonymous.status(), '401');
  }
  const refusalLines = () => s.lines.filter((line) => line.includes('refused'));
  assert.equal(refusalLines().length, 1, refusalLines().join('\n'));
  assert.match(refusalLines()[0] as string, /POST \/check from 127\.0\.0\.1 refused: no X-Hub-Signature-256, X-Gitlab-Token or bearer token \(further refusals within 60 s are counted in one line\)/);
  s.server.flushRefusals();
  assert.equal(refusalLines().length, 1, 'the interval is not over: nothing more yet');
  s.setTime(start0 + 60_000);
  s.server.flushRefusals();
  assert.equal(refusalLines().length, 2);
  assert.match(refusalLines()[1] as string, /POST \/check: 49 more refused in the last 60 s \(49 × no X-Hub-Signature-256, X-Gitlab-Token or bearer token\); the last from 127\.0\.0\.1/);
  const wrong = peer(t, s.port);
  wrong.send(head({ 'content-length': 0, authorization: 'Bearer wrong-token-00000000000000' }));
  assert.equal(await wrong.status(), '401');
  assert.equal(refusalLines().length, 3, 'a new interval starts with one full line');
  assert.ok(!s.lines.some((line) => line.includes(secret)), 'the secret is never logged');
});
