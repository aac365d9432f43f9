// Servers that misbehave: an endless body, a trickle, a downgrade from https to http, an ETag
// that changes at every request, Retry-After; and a full disk under the releases or the cache.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { runCli } from './helpers/cli.js';
import { makeCertificate } from './helpers/git-servers.js';
import { listenOnLoopback } from './helpers/listen.js';
import { smallDisk } from './helpers/small-disk.js';
import { setup } from './helpers/zip-agent.js';

const run = promisify(execFile);

/** Version 1 deployed, then the archive's URL answers 200 with a zip's headers and whatever `body` writes. */
async function liveThenServing(t: TestContext, config: string, body: (response: ServerResponse) => void) {
  const s = await setup(t, config);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  s.server.route('/app.zip', {
    kind: 'custom',
    respond: (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/zip' });
      body(response);
    },
  });
  return s;
}

test('an endless body fails at max-download-size and leaves no partial download; an announced oversize is refused before the body', async (t) => {
  const s = await liveThenServing(t, 'max-download-size = 2M\n', (response) => {
    const chunk = Buffer.alloc(64 * 1024);
    chunk.write('PK\x03\x04', 'latin1');
    const pump = () => {
      while (response.write(chunk));
      response.once('drain', pump);
    };
    response.on('close', () => response.removeAllListeners('drain'));
    pump();
  });
  const endless = await s.once();
  assert.equal(endless.code, 3, endless.stderr);
  assert.match(endless.stderr, /it is larger than max-download-size \(2097152 bytes\)/);
  assert.deepEqual(await readdir(join(s.sandbox.cache, 'downloads')), []);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  s.server.route('/app.zip', { kind: 'custom', respond: (_request, response) => response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(50 * 1024 * 1024) }).end() });
  const announced = await s.once();
  assert.equal(announced.code, 3, announced.stderr);
  assert.match(announced.stderr, /larger than max-download-size \(2097152 bytes\): the server announced 52428800/);
});

test('a trickle (a byte at a time) fails within http-timeout instead of holding the lock', async (t) => {
  const s = await liveThenServing(t, 'http-timeout = 1\n', (response) => {
    const timer = setInterval(() => response.write('P'), 300);
    response.on('close', () => clearInterval(timer));
  });
  const result = await s.once();
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /the download slowed to a trickle \(under 1024 bytes in http-timeout, 1 seconds\)/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('an https:// remote redirected to plain http:// is refused unless allow-insecure-redirects = yes', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const certificate = await makeCertificate(join(s.root, 'tls'));
  const https = createHttpsServer({ key: certificate.key, cert: certificate.cert }, (_request, response) => {
    response.writeHead(302, { location: s.remote }).end();
  });
  const port = await listenOnLoopback(t, https);
  const remote = `https://127.0.0.1:${port}/app.zip`;
  const env = { NODE_EXTRA_CA_CERTS: certificate.certPath };
  const refused = await runCli(s.sandbox.args(remote), env);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /the server redirected from https:\/\/ to plain http:\/\/127\.0\.0\.1:\d+, which is refused; point the remote at the https:\/\/ URL .* or set allow-insecure-redirects = yes/);
  assert.equal(s.server.requests.length, 0, 'the plaintext URL was never asked');

  await writeFile(s.sandbox.config, 'allow-insecure-redirects = yes\n');
  const allowed = await runCli(s.sandbox.args(remote), env);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('an ETag that changes at every request: the same content is not redeployed, and it is said once', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const body = await readFile(join(s.root, 'app.zip'));
  let served = 0;
  s.server.route('/app.zip', { kind: 'custom', respond: (_request, response) => response.writeHead(200, { 'content-type': 'application/zip', etag: `"v${++served}"`, 'content-length': String(body.length) }).end(body) });
  assert.equal((await s.once()).code, 0);
  const hookLines = (await s.hookLines()).length;
  const outputs = [];
  for (let check = 0; check < 3; check++) {
    const result = await s.once();
    assert.equal(result.code, 0, result.stderr);
    outputs.push(result.stderr);
  }
  assert.equal((await s.hookLines()).length, hookLines, 'no hook ran: nothing was redeployed');
  assert.equal(outputs.filter((output) => /sent a new ETag for the same content/.test(output)).length, 1, outputs.join('\n'));
  assert.equal((await s.state()).current.remoteState.etag, `"v${served}"`, 'the newest validators are remembered');
});

test('Retry-After on 503 is honoured: no request until then (capped at max-backoff)', async (t) => {
  const s = await setup(t, 'max-backoff = 3600\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  s.server.route('/app.zip', { kind: 'custom', respond: (_request, response) => response.writeHead(503, { 'retry-after': '3600' }).end('busy') });
  s.server.resetCounters();
  const first = await s.once();
  assert.equal(first.code, 3);
  const later = [await s.once(), await s.once(), await s.once()];
  assert.equal(s.server.requests.length, 1, 'asked once in four checks');
  for (const result of later) {
    assert.equal(result.code, 3);
    assert.match(result.stderr, /asked \(Retry-After\) not to be asked again before \d{4}-\d\d-\d\dT.*; no request was sent/);
  }
});

test('a full disk under the releases: "no space left", exit 3, the live release intact, no staging left', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  // The next archive (2 MiB of random data) does not fit on a 1 MiB filesystem holding the releases.
  const www = join(s.root, 'www');
  const { randomBytes } = await import('node:crypto');
  const { zipTree } = await import('./helpers/zips.js');
  const { rename } = await import('node:fs/promises');
  const small = await smallDisk(t, '1m');
  if (!small) return;
  await rename(join(www, 'current'), join(s.root, 'old-current'));
  await mkdir(join(small, 'releases'));
  const sandboxArgs = s.sandbox.args(s.remote).map((argument) => (argument === s.sandbox.live ? join(small, 'current') : argument));
  assert.equal((await runCli(sandboxArgs)).code, 0, 'version 1 fits');
  const next = join(s.root, 'big.zip');
  await zipTree({ 'index.html': 'version 2\n', 'blob.bin': randomBytes(2 * 1024 * 1024).toString('base64') }, next, s.root);
  await rename(next, join(s.root, 'app.zip'));
  const full = await runCli(sandboxArgs);
  assert.equal(full.code, 3, full.stderr);
  assert.match(full.stderr, /no space left on the filesystem holding .*: the archive needs about \d+ bytes and \d+ are free/);
  assert.equal(await readFile(join(small, 'current', 'index.html'), 'utf8'), 'version 1\n');
  assert.ok(!(await readdir(join(small, 'releases'))).some((name) => name.startsWith('.staging-')));
});

test('a cache on a full disk: "no space left", exit 3, and no empty owner or temp file left behind', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const cache = await smallDisk(t, '64k');
  if (!cache) return;
  await run('sh', ['-c', `dd if=/dev/zero of=${join(cache, 'filler')} bs=4k 2>/dev/null || true`]);
  const args = s.sandbox.args(s.remote).map((argument) => (argument === s.sandbox.cache ? cache : argument));
  const result = await runCli(args);
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /no space left on the filesystem holding /);
  assert.doesNotMatch(result.stderr, /ENOSPC .*write|corrupt or truncated/);
  // agent.lock is the lock itself: an empty file that stays, by design (docs/on-disk.md).
  assert.deepEqual((await readdir(cache)).sort(), ['agent.lock', 'filler'], 'nothing half-written is left');
});

test('credentials in an HTTP remote are not sent on to another server the archive is redirected to', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const { startHttpServer } = await import('./helpers/http-server.js');
  const other = await startHttpServer(t);
  other.route('/app.zip', { kind: 'file', path: join(s.root, 'app.zip') });
  s.server.route('/app.zip', { kind: 'basic-auth', user: 'deployer', password: 'tok-redirect-91c', route: { kind: 'redirect', location: other.url('/app.zip') } });
  const remote = s.remote.replace('http://', 'http://deployer:tok-redirect-91c@');
  const result = await runCli(s.sandbox.args(remote));
  assert.equal(result.code, 0, result.stderr);
  assert.ok(s.server.requests.some((request) => request.headers.authorization), 'the remote\'s own server got the credentials');
  assert.ok(other.requests.length > 0 && other.requests.every((request) => request.headers.authorization === undefined), 'the other server got none');
});

test('a local zip larger than the room left in the cache: "no space left", exit 3, the live release intact, no copy left in downloads/', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const cache = await smallDisk(t, '512k');
  if (!cache) return;
  const archive = join(s.root, 'app.zip');
  const args = s.sandbox.args(archive).map((argument) => (argument === s.sandbox.cache ? cache : argument));
  assert.equal((await runCli(args)).code, 0, 'version 1 fits');
  const { randomBytes } = await import('node:crypto');
  const { zipTree } = await import('./helpers/zips.js');
  const { rename } = await import('node:fs/promises');
  const next = join(s.root, 'big.zip');
  await zipTree({ 'index.html': 'version 2\n', 'blob.bin': randomBytes(1024 * 1024).toString('base64') }, next, s.root);
  await rename(next, archive);
  const full = await runCli(args);
  assert.equal(full.code, 3, full.stderr);
  assert.match(full.stderr, /no space left on the filesystem holding /);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.deepEqual(await readdir(join(cache, 'downloads')), [], 'the partial copy is removed');
});
