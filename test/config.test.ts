import assert from 'node:assert/strict';
import { chmod, mkdir, readlink, stat, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parseConfigText } from '../src/settings/config-file.js';
import { loadSettings, parseByteSize } from '../src/settings/config.js';
import { environmentName, knownSettingKeys, maximumSeconds, settingSpecs, type SettingKey } from '../src/core/settings-schema.js';
import { makeSandbox, runCli, writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

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
  assert.equal(settings.remote?.display, '/from/flag.zip');
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
  await assert.rejects(loadSettings({ flags: { config: join(root, 'none.cfg') }, env: {}, cwd: root }), /the config file .*none\.cfg does not exist/);
  await assert.rejects(
    loadSettings({ flags: {}, env: { REPO_DEPLOY_CONFIG: '/nonexistent/none.cfg' }, cwd: root }),
    /the config file \/nonexistent\/none\.cfg does not exist/,
  );
});

test('every duration above 24.8 days (the longest Node timer), or above its own smaller maximum, is a usage error naming the maximum; the maximum itself is accepted', async () => {
  const durations = settingSpecs.filter((spec) => spec.kind === 'seconds');
  assert.ok(durations.length >= 10, 'the durations are found');
  for (const spec of durations) {
    const variable = environmentName(spec.key as SettingKey);
    const maximum: number = 'maximum' in spec ? spec.maximum : maximumSeconds;
    const over = loadSettings({ flags: {}, env: { [variable]: String(maximum + 1) }, cwd: '/' });
    const why = maximum === maximumSeconds ? ' \\(24\\.8 days' : '';
    await assert.rejects(over, new RegExp(`${spec.key} = "${maximum + 1}" is not at most ${maximum} seconds${why}`), spec.key);
    const at = await loadSettings({ flags: {}, env: { [variable]: String(maximum) }, cwd: '/' });
    assert.equal((at as unknown as Record<string, number>)[spec.field], maximum * 1000, spec.key);
  }
});

test('hook-timeout = 2592000 (30 days) exits 2 with the maximum, runs no hook, and leaves the live release', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const archive = await zipTree({ 'index.html': 'version 1\n' }, join(root, 'app.zip'), root);
  assert.equal((await runCli(sandbox.args(archive))).code, 0);
  const hookRan = join(root, 'hook-ran');
  await writeHook(sandbox.preHooks, '10-mark', `touch "${hookRan}"`);
  await writeFile(sandbox.config, 'hook-timeout = 2592000\n');
  await zipTree({ 'index.html': 'version 2\n' }, join(root, 'app2.zip'), root);
  const result = await runCli(sandbox.args(join(root, 'app2.zip')));
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /hook-timeout = "2592000" is not at most 2147483 seconds/);
  assert.doesNotMatch(result.stderr, /TimeoutOverflowWarning/);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  await assert.rejects(stat(hookRan), 'no hook ran');
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
  assert.match(badFlag.stderr, /^repo-deploy: unknown option --frobnicate; see repo-deploy --help$/m);
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

test('a hook directory named by a flag, the environment or the config that does not exist is a config error naming it', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  const missing = join(root, 'no-such-hooks.d');
  const byFlag = await runCli(['-f', '-r', archive, '-l', sandbox.live, '--cache', sandbox.cache, '--pre-hooks', missing, '--post-hooks', sandbox.postHooks]);
  assert.equal(byFlag.code, 2, byFlag.stderr);
  assert.match(byFlag.stderr, new RegExp(`--pre-hooks: the pre-hooks directory ${missing} does not exist; create it`));
  const byEnv = await runCli(['-f', '-r', archive, '-l', sandbox.live, '--cache', sandbox.cache, '--pre-hooks', sandbox.preHooks], { REPO_DEPLOY_POST_HOOKS: missing });
  assert.equal(byEnv.code, 2, byEnv.stderr);
  assert.match(byEnv.stderr, /REPO_DEPLOY_POST_HOOKS: the post-hooks directory .* does not exist/);
  await writeFile(sandbox.config, `post-hooks = ${missing}\n`);
  const byFile = await runCli(['-f', '-c', sandbox.config, '-r', archive, '-l', sandbox.live, '--cache', sandbox.cache, '--pre-hooks', sandbox.preHooks]);
  assert.equal(byFile.code, 2, byFile.stderr);
  assert.match(byFile.stderr, /repo-deploy\.cfg:1: the post-hooks directory .* does not exist/);
  await assert.rejects(readlink(sandbox.live), 'nothing was deployed');
});

test('a default hook directory that does not exist means no hooks: -f from cron says so only under -v; the daemon says it once at start', async (t) => {
  const root = await temporaryDirectory(t);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  const defaults = ['/etc/repo-deploy/pre-update.d', '/etc/repo-deploy/post-update.d'] as const;
  if ((await Promise.all(defaults.map((path) => stat(path).then(() => true, () => false)))).some(Boolean)) {
    t.skip('this machine has /etc/repo-deploy hook directories; the default-directory case needs them absent');
    return;
  }
  const args = ['-r', archive, '-l', join(root, 'www', 'current'), '--cache', join(root, 'cache')];
  const said = (stderr: string, phase: string, directory: string) => stderr.split('\n').filter((line) => line.includes(`no ${phase} hooks: the default directory ${directory} does not exist`));
  const quiet = await runCli(['-f', ...args]);
  assert.equal(quiet.code, 0, quiet.stderr);
  const verbose = await runCli(['-f', '-v', ...args]);
  assert.equal(verbose.code, 0, verbose.stderr);
  for (const [phase, directory] of [['pre-update', defaults[0]], ['post-update', defaults[1]]] as const) {
    assert.deepEqual(said(quiet.stderr, phase, directory), [], quiet.stderr);
    assert.equal(said(verbose.stderr, phase, directory).length, 1, verbose.stderr);
    assert.match(said(verbose.stderr, phase, directory)[0] ?? '', /DEBUG/);
  }
  const daemon = startAgent(t, args);
  await daemon.waitFor(/no post-update hooks: the default directory/);
  const stopped = await daemon.stop();
  for (const [phase, directory] of [['pre-update', defaults[0]], ['post-update', defaults[1]]] as const) {
    assert.equal(said(stopped.stderr, phase, directory).length, 1, stopped.stderr);
    assert.match(said(stopped.stderr, phase, directory)[0] ?? '', /INFO/);
  }
});

test('operator slips get one clear line: a missing -c file, -h, a misspelled key, a misspelled REPO_DEPLOY_ variable', async (t) => {
  const root = await temporaryDirectory(t);
  const missingConfig = await runCli(['-f', '-c', join(root, 'nope.cfg'), '-r', '/x.zip']);
  assert.equal(missingConfig.code, 2);
  assert.match(missingConfig.stderr, /^repo-deploy: the config file .*nope\.cfg does not exist; check the path given with -c/);
  assert.doesNotMatch(missingConfig.stderr, /ENOENT/);

  const help = await runCli(['-h']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Polls one remote/);

  const config = join(root, 'typo.cfg');
  await writeFile(config, 'remote = /x.zip\nkeep-release = 3\n');
  const typo = await runCli(['-f', '-c', config]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /typo\.cfg:2: unknown key "keep-release"; did you mean "keep-releases"\?/);

  const sandbox = await makeSandbox(root);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  const variable = await runCli(sandbox.args(archive), { REPO_DEPLOY_KEEP_RELEASE: '3' });
  assert.equal(variable.code, 0, variable.stderr);
  assert.match(variable.stderr, /WARN .*the environment variable REPO_DEPLOY_KEEP_RELEASE is not a setting and is ignored; did you mean REPO_DEPLOY_KEEP_RELEASES\?/);
});

test('a config file holding a secret that group or others can read is warned about, with the fix', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, 'aws-access-key = AKIAEXAMPLE\naws-secret-key = not-a-real-secret-value\n');
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  await chmod(sandbox.config, 0o644);
  const open = await runCli(sandbox.args(archive));
  assert.equal(open.code, 0, open.stderr);
  assert.match(open.stderr, /WARN .*the config file .*repo-deploy\.cfg holds a secret \(aws-access-key, aws-secret-key\) and can be read by group or others \(mode 644\); chmod 600/);
  assert.ok(!open.stderr.includes('not-a-real-secret-value'));
  await chmod(sandbox.config, 0o600);
  const closed = await runCli(sandbox.args(archive));
  assert.equal(closed.code, 0, closed.stderr);
  assert.doesNotMatch(closed.stderr, /holds a secret/);
});

test('a webhook-secret file that group or others can read is warned about, naming the file, with the fix', async (t) => {
  const root = await temporaryDirectory(t);
  const secretFile = join(root, 'webhook-secret');
  await writeFile(secretFile, 'a-webhook-secret-of-some-length-0123\n', { mode: 0o644 });
  await chmod(secretFile, 0o644);
  const sandbox = await makeSandbox(root, `webhook-secret = ${secretFile}\n`);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  const common = ['-c', sandbox.config, '-r', archive, '-l', sandbox.live, '--cache', sandbox.cache, '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks];
  const open = await runCli(['check-config', ...common]);
  assert.equal(open.code, 0, open.stderr);
  assert.match(open.stderr, /WARN .*the webhook-secret file .*webhook-secret can be read by group or others \(mode 644\); chmod 600 /);
  assert.ok(!(open.stderr + open.stdout).includes('a-webhook-secret-of-some-length'), 'the secret is never shown');
  await chmod(secretFile, 0o600);
  const closed = await runCli(['check-config', ...common]);
  assert.equal(closed.code, 0, closed.stderr);
  assert.doesNotMatch(closed.stderr, /can be read by group or others/);
});

test('webhook-secret = /dev/zero, a FIFO or a file over 4 KiB is a config error at once (check-config does not hang); -c /dev/zero too', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  const fifo = join(root, 'fifo');
  await promisify(execFile)('mkfifo', [fifo]);
  const large = join(root, 'large-secret');
  await writeFile(large, 'x'.repeat(5000), { mode: 0o600 });
  const common = ['-r', archive, '-l', sandbox.live, '--cache', sandbox.cache, '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks];
  for (const [path, reason] of [['/dev/zero', 'it is not a regular file'], [fifo, 'it is not a regular file'], [large, 'it is larger than 4096 bytes \\(5000\\)']] as const) {
    await writeFile(sandbox.config, `webhook-secret = ${path}\n`);
    const result = await runCli(['check-config', '-c', sandbox.config, ...common]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`cannot read the webhook-secret file ${path} \\(${reason}\\); give the path of a regular file of at most 4096 bytes`));
  }
  const zero = await runCli(['check-config', '-c', '/dev/zero', ...common]);
  assert.equal(zero.code, 2, zero.stderr);
  assert.match(zero.stderr, /the config file \/dev\/zero cannot be used: it is larger than 1048576 bytes/);
  const none = await runCli(['check-config', '-c', '/dev/null', ...common]);
  assert.equal(none.code, 0, `-c /dev/null still means no settings from a file: ${none.stderr}`);
});

test('a 10 MB unknown key is refused at once, its name cut, with no "did you mean"', () => {
  const key = 'k'.repeat(10 * 1024 * 1024);
  assert.throws(
    () => parseConfigText(`${key} = 1\n`, 'big.cfg', knownSettingKeys),
    (error: Error) => /^big\.cfg:1: unknown key "k{60}\.\.\. \(10485760 characters\)"; the README \("Config file"\) and etc\/repo-deploy\.cfg list every key/.test(error.message) && !error.message.includes('did you mean') && error.message.length < 4000,
  );
  assert.throws(() => parseConfigText('hook-timout = 1\n', 'typo.cfg', knownSettingKeys), /did you mean "hook-timeout"/, 'a near miss still gets its suggestion');
});

test('a config file with CR-only line endings is read line by line and deploys (not one line ending as a git error)', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  await writeFile(sandbox.config, `# written by an old editor\rremote = ${archive}\rkeep-releases = 3\r`);
  // No -r: the remote comes from the file's second line.
  const result = await runCli(['-f', '-c', sandbox.config, '-l', sandbox.live, '--cache', sandbox.cache, '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'v1\n');
  assert.equal(parseConfigText('a-key = 1\rhook-timeout = 2\r', 'cr.cfg', new Set(['a-key', 'hook-timeout'])).get('hook-timeout')?.value, '2');
});

test('check-config lists the hooks per phase in order and fails on a real live folder, missing SSH files and a bad schedule (as -f does)', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  for (const name of ['20-second', '10-first', '10-first.dpkg-old']) await writeHook(sandbox.preHooks, name, 'exit 0');
  await writeHook(sandbox.postHooks, '50-reload', 'exit 0');
  const common = ['-r', archive, '-l', sandbox.live, '--cache', sandbox.cache, '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks];
  const good = await runCli(['check-config', ...common]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /^ok +pre-update hooks: .*pre-update\.d: 10-first, 20-second\n/m);
  assert.match(good.stdout, /^ok +post-update hooks: .*post-update\.d: 50-reload\n/m);
  assert.doesNotMatch(good.stdout, /FAILED/);

  await writeFile(sandbox.config, 'schedule = 61 * * * *\n');
  for (const command of [['check-config'], ['-f']]) {
    const badSchedule = await runCli([...command, '-c', sandbox.config, ...common]);
    assert.equal(badSchedule.code, 2, `${command}: ${badSchedule.stderr}`);
    assert.match(badSchedule.stdout + badSchedule.stderr, /schedule "61 \* \* \* \*" is not a valid cron expression/);
  }
  await writeFile(sandbox.config, `ssh-key = ${join(root, 'no-key')}\n`);
  const noKey = await runCli(['check-config', '-c', sandbox.config, ...common]);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stdout, /^FAILED +ssh-key: .*ssh-key file .*no-key does not exist/m);
  await writeFile(sandbox.config, `ssh-known-hosts = ${join(root, 'no-known-hosts')}\n`);
  const noKnownHosts = await runCli(['check-config', '-c', sandbox.config, ...common]);
  assert.equal(noKnownHosts.code, 2);
  assert.match(noKnownHosts.stdout, /^FAILED +ssh-known-hosts: .*ssh-known-hosts file .*no-known-hosts does not exist; fill it with ssh-keyscan/m);
  await writeFile(sandbox.config, '');
  await mkdir(sandbox.live);
  const realFolder = await runCli(['check-config', ...common]);
  assert.equal(realFolder.code, 2);
  assert.match(realFolder.stdout, /^FAILED +live: the live path .* is a real directory/m);
  assert.match(realFolder.stderr, /check-config: 1 part failed \(live\)/);
  await assert.rejects(readlink(sandbox.live));
});
