// S3 remotes end to end: the real CLI and the real AWS SDK against s3rver on loopback.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { cliPath, makeSandbox, runCli, writeRecordingHook, type Sandbox } from './helpers/cli.js';
import { s3AccessKey, startS3, type TestS3 } from './helpers/s3-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

const run = promisify(execFile);
const configSecret = 'cfg-secret-7a6e5d4c3b2a';

interface S3Setup {
  root: string;
  sandbox: Sandbox;
  s3: TestS3;
  remote: string;
  /** An empty HOME, so no ~/.amazon/account-key or ~/.aws of the machine is used. */
  home: string;
  publish(version: string): Promise<void>;
  deploy(env?: NodeJS.ProcessEnv): ReturnType<typeof runCli>;
  hookRuns(): Promise<number>;
}

async function setup(t: TestContext, keys: 'config' | 'none' = 'config'): Promise<S3Setup> {
  const root = await temporaryDirectory(t);
  const s3 = await startS3(t);
  const keyLines = keys === 'config' ? `aws-access-key = ${s3AccessKey}\naws-secret-key = ${configSecret}\n` : '';
  const sandbox = await makeSandbox(root, `s3-endpoint = ${s3.endpoint}\naws-region = us-east-1\nhttp-timeout = 5\n${keyLines}`);
  const home = join(root, 'home');
  await mkdir(home);
  const hookLog = join(root, 'hooks.log');
  await writeRecordingHook(sandbox.postHooks, '10-record', hookLog);
  const remote = `s3://${s3.bucket}/builds/app.zip`;
  return {
    root,
    sandbox,
    s3,
    remote,
    home,
    async publish(version) {
      const path = await zipTree({ 'index.html': `version ${version}\n` }, join(root, `app-${version}.zip`), root);
      await s3.upload('builds/app.zip', await readFile(path));
    },
    deploy: (env = {}) => runCli(sandbox.args(remote), { HOME: home, ...env }),
    hookRuns: async () => (await readFile(hookLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
  };
}

function assertNoSecret(texts: string[], ...secrets: string[]): void {
  for (const text of texts) for (const secret of secrets) assert.ok(!text.includes(secret), `secret ${secret} leaked: ${text.slice(0, 400)}`);
}

test('keys from the config: deploy, an unchanged re-check with one request and no body, then a new version', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const first = await s.deploy();
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  s.s3.resetCounters();
  const unchanged = await s.deploy();
  assert.equal(unchanged.code, 0, unchanged.stderr);
  assert.equal(s.s3.requests, 1);
  assert.equal(s.s3.bodyBytes, 0, 'no body transferred for an unchanged object');
  assert.equal(await s.hookRuns(), 1);

  await s.publish('2');
  const updated = await s.deploy();
  assert.equal(updated.code, 0, updated.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  const state = await readFile(join(s.sandbox.cache, 'state.json'), 'utf8');
  assertNoSecret([first.stderr, unchanged.stderr, updated.stderr, state], configSecret);
});

test('an S3 run keeps the one-line log format: no multi-line AWS SDK Node-version warning', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const result = await s.deploy();
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /NodeVersionSupportWarning|will require node/);
  for (const line of result.stderr.trim().split('\n')) assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO |WARN |ERROR) /, `a log line: ${line}`);
});

test('keys from ~/.amazon/account-key when the config has none; a bad key there is refused, proving it was read', async (t) => {
  const s = await setup(t, 'none');
  await s.publish('1');
  const fileSecret = 'file-secret-91b2c3d4e5';
  await mkdir(join(s.home, '.amazon'));
  await writeFile(join(s.home, '.amazon', 'account-key'), `accessKey=UNKNOWNKEY\nsecretKey=${fileSecret}\n`);
  const refused = await s.deploy();
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /the credentials were refused \(InvalidAccessKeyId\)/);
  await writeFile(join(s.home, '.amazon', 'account-key'), `# deploy credentials\naccessKey=${s3AccessKey}\nsecretKey=${fileSecret}\n`);
  const accepted = await runCli([...s.sandbox.args(s.remote), '-v'], { HOME: s.home });
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stderr, /S3 credentials from .*\.amazon\/account-key/);
  assertNoSecret([refused.stderr, accepted.stderr], fileSecret);
});

test('an ~/.amazon/account-key that is a FIFO is a usage error (exit 2) at once, not a check that hangs', async (t) => {
  const s = await setup(t, 'none');
  await s.publish('1');
  await mkdir(join(s.home, '.amazon'));
  execFileSync('mkfifo', [join(s.home, '.amazon', 'account-key')]);
  const result = await s.deploy();
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /cannot read the S3 credentials file .*account-key: it is not a regular file/);
});

test('a malformed account-key file is an error naming the file, never its contents', async (t) => {
  const s = await setup(t, 'none');
  await s.publish('1');
  await mkdir(join(s.home, '.amazon'));
  await writeFile(join(s.home, '.amazon', 'account-key'), 'the-secret-is-hunter2\n');
  const result = await s.deploy();
  assert.equal(result.code, 2);
  assert.match(result.stderr, /the S3 credentials file .*account-key is malformed; it must hold accessKey=/);
  assertNoSecret([result.stderr], 'hunter2');
});

test('keys from the AWS environment when neither config nor account-key has them', async (t) => {
  const s = await setup(t, 'none');
  await s.publish('1');
  const envSecret = 'env-secret-5f4e3d2c1b';
  const result = await runCli([...s.sandbox.args(s.remote), '-v'], { HOME: s.home, AWS_ACCESS_KEY_ID: s3AccessKey, AWS_SECRET_ACCESS_KEY: envSecret });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /S3 credentials from the AWS default chain/);
  assertNoSecret([result.stderr], envSecret);
});

test('a versioned object: the version id is part of the revision hooks see', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  s.s3.versionId = 'v-0001';
  const result = await s.deploy();
  assert.equal(result.code, 0, result.stderr);
  const state = JSON.parse(await readFile(join(s.sandbox.cache, 'state.json'), 'utf8'));
  assert.match(state.current.revision, /^sha256:[0-9a-f]{64}@v-0001$/);
  assert.equal(state.current.remoteState.versionId, 'v-0001');
});

test('S3 failures: each a clear message, exit 3, and the live release untouched', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.deploy()).code, 0);
  const live = await s.sandbox.liveTarget();
  await s.publish('2');
  const withConfig = async (config: string, remote = s.remote) => {
    await writeFile(s.sandbox.config, config);
    return runCli(s.sandbox.args(remote), { HOME: s.home });
  };
  const good = `s3-endpoint = ${s.s3.endpoint}\naws-region = us-east-1\nhttp-timeout = 2\naws-access-key = ${s3AccessKey}\naws-secret-key = ${configSecret}\n`;
  const cases: Array<[string, () => Promise<Awaited<ReturnType<typeof runCli>>>, RegExp]> = [
    ['no such key', () => withConfig(good, `s3://${s.s3.bucket}/builds/missing.zip`), /the object does not exist; the live release is unchanged; check the key/],
    ['no such bucket', () => withConfig(good, 's3://no-such-bucket/app.zip'), /the bucket does not exist/],
    ['bad credentials', () => withConfig(good.replace(s3AccessKey, 'AKIAWRONG')), /the credentials were refused \(InvalidAccessKeyId\)/],
    ['access denied', async () => { s.s3.fault({ status: 403, code: 'AccessDenied', times: Infinity }); return withConfig(good); }, /access denied; .*s3:GetObject/],
    ['wrong region', async () => { s.s3.fault({ status: 301, code: 'PermanentRedirect', times: Infinity }); return withConfig(good); }, /not in this region or behind this endpoint \(PermanentRedirect\); .*set aws-region/],
    ['throttling that does not end', async () => { s.s3.fault({ status: 503, code: 'SlowDown', times: Infinity }); return withConfig(good); }, /kept answering SlowDown after retries; .*the next check tries again/],
    ['an unreachable endpoint', () => withConfig(good.replace(s.s3.endpoint, 'http://127.0.0.1:1')), /the endpoint could not be reached \(ECONNREFUSED\)/],
  ];
  for (const [situation, act, message] of cases) {
    const result = await act();
    s.s3.fault(undefined);
    assert.equal(result.code, 3, `${situation}: ${result.stderr}`);
    assert.match(result.stderr, message, situation);
    assert.equal(await s.sandbox.liveTarget(), live, situation);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', situation);
    assertNoSecret([result.stderr], configSecret);
  }
});

test('throttling that passes is retried with backoff within one check', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  s.s3.fault({ status: 503, code: 'SlowDown', times: 2 });
  s.s3.resetCounters();
  const result = await s.deploy();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(s.s3.requests, 3, 'two throttled requests, then the one that succeeded');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a large object (300 MB) is deployed with bounded memory', async (t) => {
  const s = await setup(t);
  const source = join(s.root, 'big');
  await mkdir(source);
  // Incompressible content, so the archive itself is 300 MB.
  await run('sh', ['-c', `head -c 300M /dev/urandom > ${join(source, 'blob.bin')} && echo big > ${join(source, 'index.html')}`]);
  await run('zip', ['-q0r', join(s.root, 'big.zip'), '.'], { cwd: source });
  await s.s3.upload('builds/app.zip', await readFile(join(s.root, 'big.zip')));
  const { stderr } = await run('/usr/bin/time', ['-f', 'peak-rss-kb=%M', process.execPath, cliPath, ...s.sandbox.args(s.remote)], {
    env: { PATH: process.env.PATH, HOME: s.home },
    maxBuffer: 16 << 20,
  });
  const peakKb = Number(/peak-rss-kb=(\d+)/.exec(stderr)?.[1]);
  t.diagnostic(`peak RSS deploying a 300 MB object: ${(peakKb / 1024).toFixed(0)} MB`);
  assert.ok(peakKb > 0 && peakKb < 200 * 1024, `peak RSS ${peakKb} KB stays under 200 MB for a 300 MB object`);
  assert.equal(await s.sandbox.liveFile('index.html'), 'big\n');
  assert.deepEqual(await readdir(join(s.sandbox.cache, 'downloads')), [], 'the download was removed');
});
