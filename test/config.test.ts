import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../src/config-file.js';
import { loadSettings, parseByteSize } from '../src/config.js';
import { knownSettingKeys } from '../src/settings-schema.js';
import { runCli } from './helpers/cli.js';
import { temporaryDirectory } from './helpers/temp.js';

test('the config file: comments, blank lines, values with "=", underscores as dashes', () => {
  const parsed = parseConfigText(
    '# a comment\n   # an indented comment\n\nremote = https://host/app.zip?token=a=b\nhook_timeout = 20\n',
    'x.cfg',
    knownSettingKeys,
  );
  assert.equal(parsed.get('remote')?.value, 'https://host/app.zip?token=a=b');
  assert.equal(parsed.get('hook-timeout')?.value, '20');
});

test('an unknown key is an error naming the key and its line', () => {
  assert.throws(() => parseConfigText('remote = x\n\nremtoe = y\n', 'x.cfg', knownSettingKeys), /x\.cfg:3: unknown key "remtoe"/);
});

test('a line without "=" is an error naming the line', () => {
  assert.throws(() => parseConfigText('remote\n', 'x.cfg', knownSettingKeys), /x\.cfg:1: expected "key = value"/);
});

test('precedence: flag over environment over file over default', async (t) => {
  const root = await temporaryDirectory(t);
  const config = join(root, 'repo-deploy.cfg');
  await writeFile(config, 'remote = /from/file.zip\nlocal = /from/file/current\ncache = relative-cache\nkeep-releases = 7\n');
  const settings = await loadSettings({
    flags: { config, remote: '/from/flag.zip' },
    env: { REPO_DEPLOY_LOCAL: '/from/env/current' },
    cwd: '/somewhere',
  });
  assert.equal(settings.remote, '/from/flag.zip');
  assert.equal(settings.local, '/from/env/current');
  assert.equal(settings.cache, join(root, 'relative-cache'), 'a relative path in the file is taken from the file\'s directory');
  assert.equal(settings.keepReleases, 7);
  assert.equal(settings.hookTimeoutMs, 300_000);
  assert.equal(settings.schedule, '* * * * *');
});

test('a bad value names the key, the value and where it came from', async (t) => {
  const root = await temporaryDirectory(t);
  const config = join(root, 'repo-deploy.cfg');
  await writeFile(config, 'hook-timeout = soon\n');
  await assert.rejects(loadSettings({ flags: { config }, env: {}, cwd: root }), /repo-deploy\.cfg:1: hook-timeout = "soon" is not a whole number of seconds/);
  await assert.rejects(loadSettings({ flags: { config: join(root, 'none.cfg') }, env: {}, cwd: root }), /cannot read config file .*none\.cfg: ENOENT/);
  await assert.rejects(
    loadSettings({ flags: {}, env: { REPO_DEPLOY_CONFIG: '/nonexistent/none.cfg' }, cwd: root }),
    /cannot read config file/,
  );
});

test('a missing default config file is fine', async () => {
  const settings = await loadSettings({ flags: {}, env: {}, cwd: '/' });
  assert.equal(settings.local, '/var/deploy/current');
});

test('one S3 key without the other is a config error', async () => {
  await assert.rejects(loadSettings({ flags: {}, env: { REPO_DEPLOY_AWS_ACCESS_KEY: 'AKIAEXAMPLE' }, cwd: '/' }), /go together/);
});

test('sizes accept K, M and G suffixes', () => {
  assert.equal(parseByteSize('512M'), 512 * 1024 * 1024);
  assert.equal(parseByteSize('4G'), 4 * 1024 ** 3);
  assert.equal(parseByteSize('100'), 100);
  assert.equal(parseByteSize('lots'), undefined);
});

test('the command line: a bad flag, a bad key, a missing remote each exit 2 with one line and touch nothing', async (t) => {
  const root = await temporaryDirectory(t);
  const badFlag = await runCli(['--frobnicate']);
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /^repo-deploy: Unknown argument: frobnicate/);
  assert.equal(badFlag.stderr.trim().split('\n').length, 1);

  const config = join(root, 'bad.cfg');
  await writeFile(config, 'remote = /x.zip\ncolour = blue\n');
  const badKey = await runCli(['-f', '-c', config, '--cache', join(root, 'cache')]);
  assert.equal(badKey.code, 2);
  assert.match(badKey.stderr, /bad\.cfg:2: unknown key "colour"/);

  const noRemote = await runCli(['-f', '--cache', join(root, 'cache'), '-l', join(root, 'live')]);
  assert.equal(noRemote.code, 2);
  assert.match(noRemote.stderr, /no remote is set; give one with -r, REPO_DEPLOY_REMOTE/);

  const badRemote = await runCli(['-f', '-r', 'ftp://host/app', '--cache', join(root, 'cache'), '-l', join(root, 'live')]);
  assert.equal(badRemote.code, 2);
  assert.match(badRemote.stderr, /fits none of the accepted forms/);

  const { readdir } = await import('node:fs/promises');
  assert.deepEqual((await readdir(root)).sort(), ['bad.cfg'], 'nothing was created on disk');
});
