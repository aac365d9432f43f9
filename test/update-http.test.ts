// The whole agent, driven as operators drive it (`repo-deploy -f`), against a real HTTP server.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile, rm, access } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSandbox, runCli, startCli, writeHook, writeRecordingHook, type Sandbox } from './helpers/cli.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { rawZip, symlinkEntry } from './helpers/raw-zip.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

interface Setup {
  root: string;
  sandbox: Sandbox;
  server: TestHttpServer;
  hookLog: string;
  remote: string;
  /** Publishes a new version of the archive at the remote. */
  publish(version: string): Promise<void>;
  readHookLog(): Promise<string[]>;
}

async function setup(t: TestContext, configText = ''): Promise<Setup> {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, configText);
  const server = await startHttpServer(t);
  const hookLog = join(root, 'hooks.log');
  const archive = join(root, 'app.zip');
  await writeRecordingHook(sandbox.preHooks, '10-record', hookLog, join(root, 'pre-exit'));
  await writeRecordingHook(sandbox.postHooks, '10-record', hookLog, join(root, 'post-exit'));
  server.route('/app.zip', { kind: 'file', path: archive });
  const setupValue: Setup = {
    root,
    sandbox,
    server,
    hookLog,
    remote: server.url('/app.zip'),
    async publish(version) {
      await rm(archive, { force: true });
      await zipTree(
        { 'index.html': `version ${version}\n`, 'bin/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 } },
        archive,
        root,
      );
    },
    async readHookLog() {
      const text = await readFile(hookLog, 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean);
    },
  };
  return setupValue;
}

async function deployVersion(s: Setup, version: string): Promise<string> {
  await s.publish(version);
  const result = await runCli(s.sandbox.args(s.remote));
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), `version ${version}\n`);
  return s.sandbox.liveTarget();
}

/** The promise every failure keeps: the live path still points at the last good release, files intact. */
async function assertLiveIntact(s: Setup, expectedTarget: string, version: string): Promise<void> {
  assert.equal(await s.sandbox.liveTarget(), expectedTarget);
  assert.equal(await s.sandbox.liveFile('index.html'), `version ${version}\n`);
  const entries = await readdir(join(s.sandbox.root, 'www', 'releases'));
  assert.ok(!entries.some((entry) => entry.startsWith('.staging-')), `no staging leftovers: ${entries}`);
}

test('first deploy: the live path becomes a relative link to a complete release, hooks see the new release', async (t) => {
  const s = await setup(t);
  const target = await deployVersion(s, '1');
  assert.match(target, /^releases\/\d{8}T\d{6}Z-[0-9a-f]{12}$/);
  const { stat } = await import('node:fs/promises');
  assert.equal((await stat(join(s.sandbox.live, 'bin/run.sh'))).mode & 0o777, 0o755);
  const releasePath = join(s.sandbox.root, 'www', target);
  assert.deepEqual(await s.readHookLog(), [
    `10-record phase=pre-update current=${releasePath} previous= revision=${(await state(s)).current.revision} previous_revision=`,
    `10-record phase=post-update current=${releasePath} previous= revision=${(await state(s)).current.revision} previous_revision=`,
  ]);
});

/** What the releases directory holds: release directories and their manifests. */
async function releaseEntries(s: Setup): Promise<string[]> {
  return (await readdir(join(s.sandbox.root, 'www', 'releases'))).sort();
}

async function state(s: Setup) {
  return JSON.parse(await readFile(join(s.sandbox.cache, 'state.json'), 'utf8'));
}

test('an unchanged re-check makes one conditional request, downloads no body and runs no hook', async (t) => {
  const s = await setup(t);
  await deployVersion(s, '1');
  const hooksBefore = await s.readHookLog();
  s.server.resetCounters();
  const result = await runCli(s.sandbox.args(s.remote));
  assert.equal(result.code, 0, result.stderr);
  assert.equal(s.server.requests.length, 1);
  assert.equal(s.server.requests[0]?.status, 304);
  assert.ok(s.server.requests[0]?.headers['if-none-match']);
  assert.equal(s.server.bodyBytesSent, 0);
  assert.deepEqual(await s.readHookLog(), hooksBefore);
  assert.match(result.stderr, /up to date/);
});

test('a server with Last-Modified and no ETag gets If-Modified-Since and answers 304', async (t) => {
  const s = await setup(t);
  s.server.route('/app.zip', { kind: 'file', path: join(s.root, 'app.zip'), etag: false, lastModified: new Date('2026-01-02T03:04:05Z') });
  await deployVersion(s, '1');
  s.server.resetCounters();
  const result = await runCli(s.sandbox.args(s.remote));
  assert.equal(result.code, 0);
  assert.equal(s.server.requests[0]?.headers['if-modified-since'], 'Fri, 02 Jan 2026 03:04:05 GMT');
  assert.equal(s.server.bodyBytesSent, 0);
});

test('a new version is deployed; hooks see the previous release and revision', async (t) => {
  const s = await setup(t);
  const first = await deployVersion(s, '1');
  const firstRevision = (await state(s)).current.revision;
  const second = await deployVersion(s, '2');
  assert.notEqual(first, second);
  const lines = await s.readHookLog();
  assert.match(lines.at(-1) ?? '', new RegExp(`phase=post-update current=.*${second.slice(9)} previous=.*${first.slice(9)} .*previous_revision=${firstRevision}`));
  const saved = await state(s);
  assert.equal(saved.previous.release, first.slice('releases/'.length));
});

test('a blocking pre-update hook leaves the live release untouched; the next check tries again', async (t) => {
  const s = await setup(t);
  const good = await deployVersion(s, '1');
  await s.publish('2');
  await writeFile(join(s.root, 'pre-exit'), '7');
  const blocked = await runCli(s.sandbox.args(s.remote));
  assert.equal(blocked.code, 4);
  assert.match(blocked.stderr, /update to [0-9a-f]{12} blocked: pre-update hook 10-record failed with exit code 7/);
  assert.match(blocked.stderr, /the live release is unchanged and the next check tries again/);
  await assertLiveIntact(s, good, '1');
  assert.deepEqual(await releaseEntries(s), [good.slice('releases/'.length), `.manifest-${good.slice('releases/'.length)}.json`].sort(), 'the refused release and its manifest were removed');
  assert.ok(!(await s.readHookLog()).some((line) => line.includes('phase=post-update') && line.includes('version 2')));

  await rm(join(s.root, 'pre-exit'));
  const retried = await runCli(s.sandbox.args(s.remote));
  assert.equal(retried.code, 0, retried.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});

test('a failing post-update hook reverts to the previous release and re-runs the hooks in phase revert; a retry then succeeds', async (t) => {
  const s = await setup(t);
  const good = await deployVersion(s, '1');
  const goodPath = join(s.sandbox.root, 'www', good);
  await s.publish('2');
  await writeFile(join(s.root, 'post-exit'), '1');
  const reverted = await runCli(s.sandbox.args(s.remote));
  assert.equal(reverted.code, 5);
  assert.match(reverted.stderr, /update to [0-9a-f]{12} reverted: post-update hook 10-record failed with exit code 1/);
  await assertLiveIntact(s, good, '1');
  const lines = await s.readHookLog();
  const revertLine = lines.at(-1) ?? '';
  assert.match(revertLine, new RegExp(`phase=revert current=${goodPath} previous=.*releases/\\d{8}T`));
  assert.equal((await state(s)).failures[0].count, 1);

  await rm(join(s.root, 'post-exit'));
  const retried = await runCli(s.sandbox.args(s.remote));
  assert.equal(retried.code, 0, retried.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  assert.deepEqual((await state(s)).failures, []);
});

test('the very first deploy failing its post-update hook removes the live path again', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  await writeFile(join(s.root, 'post-exit'), '2');
  const result = await runCli(s.sandbox.args(s.remote));
  assert.equal(result.code, 5);
  await assert.rejects(access(s.sandbox.live), /ENOENT/);
  assert.match((await s.readHookLog()).at(-1) ?? '', /phase=revert current= previous=.*releases\//);
  assert.deepEqual(await readdir(join(s.sandbox.root, 'www', 'releases')), []);
});

const httpFaults: Array<[string, (s: Setup) => void, RegExp, string?]> = [
  ['a 404', (s) => s.server.route('/app.zip', { kind: 'status', status: 404 }), /the server answered HTTP 404; check the URL/],
  ['a 500', (s) => s.server.route('/app.zip', { kind: 'status', status: 500 }), /the server answered HTTP 500; the live release is unchanged/],
  ['an HTML error page with status 200', (s) => s.server.route('/app.zip', { kind: 'status', status: 200, body: '<html>maintenance</html>', contentType: 'text/html' }), /sent an HTML page, not a zip/],
  ['a body that is not a zip', (s) => s.server.route('/app.zip', { kind: 'status', status: 200, body: 'just text', contentType: 'application/octet-stream' }), /is not a zip archive/],
  ['a truncated body', (s) => s.server.route('/app.zip', { kind: 'truncated', path: join(s.root, 'app.zip') }), /cannot d\w+ .*app\.zip: (the download is truncated \(\d+ of \d+ bytes\)|the server closed the connection before the whole archive arrived)/],
  // The origin ends the connection cleanly halfway (undici: UND_ERR_RES_CONTENT_LENGTH_MISMATCH).
  ['a body the origin ends early', (s) => s.server.route('/app.zip', { kind: 'custom', respond: (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/zip', 'content-length': '4000' });
    // Ended once the 1500 bytes have reached the socket (ended at once, they were sometimes still queued: 0 arrived).
    response.write(Buffer.alloc(1500, 0x50), () => response.socket?.end());
  } }), /cannot deploy .*app\.zip: the download is truncated \(1500 of 4000 bytes\)/],
  ['a stalled body', (s) => s.server.route('/app.zip', { kind: 'stalled', path: join(s.root, 'app.zip') }), /stalled for longer than http-timeout \(1 seconds\)/],
  ['too many redirects', (s) => {
    for (let hop = 0; hop < 8; hop++) s.server.route(hop === 0 ? '/app.zip' : `/hop${hop}`, { kind: 'redirect', location: `/hop${hop + 1}` });
  }, /more than max-redirects \(5\) redirects/],
  ['an unreachable server', (s) => { s.remote = 'http://127.0.0.1:1/app.zip'; }, /cannot download http:\/\/127\.0\.0\.1:1\/app\.zip: .*ECONNREFUSED/],
];

for (const [situation, arrange, message] of httpFaults) {
  test(`${situation}: a failed check (exit 3) with a clear message, and the live release untouched`, async (t) => {
    const s = await setup(t, 'http-timeout = 1\n');
    const good = await deployVersion(s, '1');
    await s.publish('2');
    arrange(s);
    const result = await runCli(s.sandbox.args(s.remote));
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, message);
    assert.doesNotMatch(result.stderr, /UND_ERR/, 'the agent\'s own words, not undici\'s codes');
    await assertLiveIntact(s, good, '1');
    assert.deepEqual(await readdir(join(s.sandbox.cache, 'downloads')), [], 'no partial download left behind');
  });
}

test('redirects are followed to the archive', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  s.server.route('/latest.zip', { kind: 'redirect', location: '/app.zip', status: 301 });
  const result = await runCli(s.sandbox.args(s.server.url('/latest.zip')));
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a hostile archive over HTTP is refused (exit 3) and nothing outside the staging directory is written', async (t) => {
  const s = await setup(t);
  const good = await deployVersion(s, '1');
  await writeFile(join(s.root, 'evil.zip'), rawZip([{ name: 'index.html', data: 'pwned' }, symlinkEntry('escape', '../../../etc')]));
  s.server.route('/evil.zip', { kind: 'file', path: join(s.root, 'evil.zip') });
  const result = await runCli(s.sandbox.args(s.server.url('/evil.zip')));
  assert.equal(result.code, 3);
  assert.match(result.stderr, /entry "escape" is a symlink to "..\/..\/..\/etc", outside the release; nothing was deployed/);
  await assertLiveIntact(s, good, '1');
});

test('credentials in the URL are sent as Basic auth and appear in no log line or state file', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const password = 'pa55-w0rd-secret';
  s.server.route('/private/app.zip', { kind: 'basic-auth', user: 'deployer', password, route: { kind: 'file', path: join(s.root, 'app.zip') } });
  const remote = s.server.url('/private/app.zip').replace('http://', `http://deployer:${password}@`);
  const ok = await runCli(s.sandbox.args(remote, '-v'));
  assert.equal(ok.code, 0, ok.stderr);
  const wrong = await runCli(s.sandbox.args(remote.replace(password, 'wrong-secret-value'), '-v'));
  assert.equal(wrong.code, 3);
  assert.match(wrong.stderr, /HTTP 401; the server wants credentials/);
  for (const text of [ok.stderr, ok.stdout, wrong.stderr, await readFile(join(s.sandbox.cache, 'state.json'), 'utf8')]) {
    assert.ok(!text.includes(password) && !text.includes('wrong-secret-value'), `secret leaked into: ${text}`);
  }
  assert.match(ok.stderr, /deployer:\*\*\*@/);
});

test('a live path that already exists as a real folder is refused with what to do, and left alone', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  await mkdir(s.sandbox.live, { recursive: true });
  await writeFile(join(s.sandbox.live, 'precious.txt'), 'keep me');
  const result = await runCli(s.sandbox.args(s.remote));
  assert.equal(result.code, 2);
  assert.match(result.stderr, /is a real directory, not a link made by repo-deploy; move it away \(mv .*current .*current\.orig\)/);
  assert.equal(await readFile(join(s.sandbox.live, 'precious.txt'), 'utf8'), 'keep me');
});

test('two runs at once: the second finds the lock held and exits 6 without touching anything', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  await writeHook(s.sandbox.preHooks, '05-slow', 'sleep 3');
  const first = startCli(s.sandbox.args(s.remote));
  await sleep(1200);
  const second = await runCli(s.sandbox.args(s.remote));
  assert.equal(second.code, 6);
  assert.match(second.stderr, /another repo-deploy run holds the lock .*agent\.lock; wait for it to finish/);
  const firstResult = await first.done;
  assert.equal(firstResult.code, 0, firstResult.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('old releases are pruned to keep-releases, never the live one or the one before it', async (t) => {
  const s = await setup(t, 'keep-releases = 2\n');
  for (const version of ['1', '2', '3', '4']) await deployVersion(s, version);
  const saved = await state(s);
  const kept = [saved.previous.release, saved.current.release];
  assert.deepEqual(await releaseEntries(s), [...kept, ...kept.map((id: string) => `.manifest-${id}.json`)].sort(), 'two releases, each with its manifest');
});

test('a local zip, as a path and as a file:// URL, deploys and then re-checks without re-hashing a changed file', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const path = join(s.root, 'app.zip');
  const first = await runCli(s.sandbox.args(path));
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const again = await runCli(s.sandbox.args(`file://${path}`));
  assert.equal(again.code, 0);
  assert.equal((await s.readHookLog()).length, 2, `the same archive is not deployed twice: ${again.stderr} ${(await s.readHookLog()).join('|')}`);
  await s.publish('2');
  const updated = await runCli(s.sandbox.args(path));
  assert.equal(updated.code, 0, updated.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  const missing = await runCli(s.sandbox.args(join(s.root, 'missing.zip')));
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /missing\.zip does not exist/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});
