// Verified deploys: only content the operator's keys vouch for goes live. Real keys made by
// ssh-keygen and gpg in the test; real signatures; the real CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, open, readdir, readFile, rm, stat, writeFile, appendFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { makeSandbox, runCli, writeRecordingHook, type Sandbox } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { createRepository, git } from './helpers/git-repos.js';
import { startHttpServer } from './helpers/http-server.js';
import { s3AccessKey, startS3 } from './helpers/s3-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

const run = promisify(execFile);

interface Keys {
  trusted: string;
  stranger: string;
  allowedSigners: string;
}

async function makeKeys(root: string): Promise<Keys> {
  const directory = join(root, 'keys');
  await mkdir(directory);
  const trusted = join(directory, 'ops');
  const stranger = join(directory, 'stranger');
  for (const key of [trusted, stranger]) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'key', '-f', key]);
  const allowedSigners = join(directory, 'allowed_signers');
  await writeFile(allowedSigners, `ops@example.com ${(await readFile(`${trusted}.pub`, 'utf8')).trim()}\n`);
  return { trusted, stranger, allowedSigners };
}

const sign = (key: string, file: string, namespace = 'repo-deploy') => run('ssh-keygen', ['-q', '-Y', 'sign', '-f', key, '-n', namespace, file]);

interface Setup {
  root: string;
  sandbox: Sandbox;
  keys: Keys;
  archive: string;
  hookRuns(): Promise<number>;
  publish(version: string, key?: string, namespace?: string): Promise<void>;
}

async function setup(t: TestContext, extraConfig = ''): Promise<Setup> {
  const root = await temporaryDirectory(t);
  const keys = await makeKeys(root);
  const sandbox = await makeSandbox(root, `allowed-signers = ${keys.allowedSigners}\n${extraConfig}`);
  const hookLog = join(root, 'hooks.log');
  await writeRecordingHook(sandbox.preHooks, '10-record', hookLog);
  const archive = join(root, 'app.zip');
  return {
    root,
    sandbox,
    keys,
    archive,
    hookRuns: async () => (await readFile(hookLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
    async publish(version, key = keys.trusted, namespace = 'repo-deploy') {
      await rm(archive, { force: true });
      await rm(`${archive}.sig`, { force: true });
      await zipTree({ 'index.html': `version ${version}\n` }, archive, root);
      await sign(key, archive, namespace);
    },
  };
}

async function assertRefused(s: Setup, remote: string, message: RegExp, liveVersion: string | undefined): Promise<void> {
  const hooks = await s.hookRuns();
  const result = await runCli(s.sandbox.args(remote));
  assert.equal(result.code, 8, result.stderr);
  assert.match(result.stderr, message);
  assert.equal(await s.hookRuns(), hooks, 'no hook ran');
  if (liveVersion) assert.equal(await s.sandbox.liveFile('index.html'), `version ${liveVersion}\n`);
}

test('zip signatures: a signed archive deploys; tampered, unknown-key, wrong-namespace and unsigned archives are refused', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const accepted = await runCli(s.sandbox.args(s.archive));
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stderr, /is signed by ops@example\.com/);

  await s.publish('2');
  await appendFile(s.archive, 'tampered');
  await assertRefused(s, s.archive, /refused .*app\.zip \(sha256 [0-9a-f]{12}\): the signature by ops@example\.com does not match the archive/, '1');
  await s.publish('3', s.keys.stranger);
  await assertRefused(s, s.archive, /the signature was made by a key that is not in allowed-signers/, '1');
  await s.publish('4', s.keys.trusted, 'other-namespace');
  await assertRefused(s, s.archive, /the signature is not for the "repo-deploy" namespace|does not match/, '1');
  await s.publish('5');
  await unlink(`${s.archive}.sig`);
  await assertRefused(s, s.archive, /there is no signature .*app\.zip\.sig beside it/, '1');
});

test('a local signed zip: the signature beside the archive is read, never moved or deleted', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const signature = await readFile(`${s.archive}.sig`, 'utf8');
  const accepted = await runCli(s.sandbox.args(s.archive));
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.equal(await readFile(`${s.archive}.sig`, 'utf8'), signature, 'the operator\'s signature file is still there, unchanged');
});

test('a signed local zip rewritten in place after its check (same size, old mtime, same inode) deploys the signed bytes, never the new ones', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await runCli(s.sandbox.args(s.archive))).code, 0);
  await s.publish('2');
  // The drop folder's account prepares an unsigned archive of exactly the same size.
  const unsigned = await zipTree({ 'index.html': 'UNSIGNED!\n' }, join(s.root, 'unsigned.zip'), s.root);
  const evil = await readFile(unsigned);
  assert.equal(evil.length, (await stat(s.archive)).size, 'the two archives have the same size');
  const go = join(s.root, 'go');
  const agent = startAgent(t, s.sandbox.args(s.archive), { REPO_DEPLOY_TEST_PAUSE_AT: 'downloaded', REPO_DEPLOY_TEST_RESUME_FILE: go });
  await agent.waitFor(/paused at downloaded/);
  // Checked and verified; now rewritten in place, its times put back to the checked ones.
  const timesOfChecked = join(s.root, 'times-of-checked');
  await run('cp', ['--preserve=timestamps', s.archive, timesOfChecked]);
  const handle = await open(s.archive, 'r+');
  await handle.write(evil, 0, evil.length, 0);
  await handle.close();
  await run('touch', ['-r', timesOfChecked, s.archive]);
  await writeFile(go, '');
  const result = await agent.done;
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n', 'the signed archive went live');
  const verify = await runCli(['verify', '-c', s.sandbox.config, '-l', s.sandbox.live, '--cache', s.sandbox.cache]);
  assert.equal(verify.code, 0, verify.stderr + verify.stdout);
  const downloads = join(s.sandbox.cache, 'downloads');
  assert.deepEqual(await readdir(downloads).catch(() => []), [], 'the copy is removed after the check');
});

test('checksum pins one exact archive', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const { stdout } = await run('sha256sum', [s.archive]);
  const sha = stdout.split(' ')[0] as string;
  await writeFile(s.sandbox.config, `checksum = sha256:${sha.toUpperCase()}\n`);
  assert.equal((await runCli(s.sandbox.args(s.archive))).code, 0);
  await s.publish('2');
  await assertRefused(s, s.archive, /its sha256 is not the one pinned by checksum/, '1');
  await writeFile(s.sandbox.config, 'checksum = md5:abc\n');
  const bad = await runCli(s.sandbox.args(s.archive));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /checksum = "md5:abc" is not sha256:<64 hex digits>/);
});

test('over HTTP the signature is fetched beside the archive; a refused archive is not downloaded again', async (t) => {
  const s = await setup(t);
  const server = await startHttpServer(t);
  server.route('/app.zip', { kind: 'file', path: s.archive });
  server.route('/app.zip.sig', { kind: 'file', path: `${s.archive}.sig`, contentType: 'text/plain' });
  await s.publish('1');
  assert.equal((await runCli(s.sandbox.args(server.url('/app.zip')))).code, 0);
  await s.publish('2', s.keys.stranger);
  await assertRefused(s, server.url('/app.zip'), /not in allowed-signers/, '1');
  server.resetCounters();
  await assertRefused(s, server.url('/app.zip'), /remembered: not downloaded again/, '1');
  assert.equal(server.bodyBytesSent, 0);
  assert.equal(server.requests[0]?.status, 304);
  await s.publish('3');
  const fixed = await runCli(s.sandbox.args(server.url('/app.zip')));
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 3\n');
});

test('over S3 the signature is the object beside the archive', async (t) => {
  const s = await setup(t);
  const s3 = await startS3(t);
  await writeFile(s.sandbox.config, `allowed-signers = ${s.keys.allowedSigners}\ns3-endpoint = ${s3.endpoint}\naws-region = us-east-1\naws-access-key = ${s3AccessKey}\naws-secret-key = x-secret-value\n`);
  await s.publish('1');
  await s3.upload('app.zip', await readFile(s.archive));
  await s3.upload('app.zip.sig', await readFile(`${s.archive}.sig`));
  const accepted = await runCli(s.sandbox.args(`s3://${s3.bucket}/app.zip`), { HOME: s.root });
  assert.equal(accepted.code, 0, accepted.stderr);
  await s.publish('2');
  await s3.upload('other.zip', await readFile(s.archive));
  await assertRefused(s, `s3://${s3.bucket}/other.zip`, /there is no signature .*other\.zip\.sig/, '1');
});

async function gitSetup(t: TestContext, extraConfig = '') {
  const s = await setup(t, extraConfig);
  const repo = await createRepository(s.root);
  const signingConfig = (key: string) => ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key}`];
  const commit = async (content: string, key?: string) => {
    await writeFile(join(repo.work, 'index.html'), content);
    await git(repo.work, 'add', '-A');
    await git(repo.work, ...(key ? signingConfig(key) : []), 'commit', '-q', ...(key ? ['-S'] : []), '-m', content.trim());
    await repo.push(true);
    return git(repo.work, 'rev-parse', 'HEAD');
  };
  return { s, repo, commit, signingConfig, remote: `${repo.bare}#main` };
}

test('git: a commit signed by an allowed signer deploys; unsigned and unknown-key commits are refused', async (t) => {
  const { s, commit, remote } = await gitSetup(t);
  await commit('version 1\n', s.keys.trusted);
  const accepted = await runCli(s.sandbox.args(remote));
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stderr, /commit [0-9a-f]{12} carries a good signature by an allowed signer/);
  await commit('version 2\n');
  await assertRefused(s, remote, /refused commit [0-9a-f]{12} of .*: the commit: it is not signed/, '1');
  await commit('version 3\n', s.keys.stranger);
  await assertRefused(s, remote, /the commit: it is signed by a key that is not an allowed signer/, '1');
});

test('git: a signed tag on an unsigned commit deploys with a tag ref', async (t) => {
  const { s, repo, commit, signingConfig } = await gitSetup(t);
  await commit('version 1\n');
  await git(repo.work, ...signingConfig(s.keys.trusted), 'tag', '-s', '-m', 'release', 'v1');
  await git(repo.work, 'push', '-q', 'origin', 'refs/tags/v1');
  const result = await runCli(s.sandbox.args(`${repo.bare}#v1`));
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /tag [0-9a-f]{12} carries a good signature/);
  await commit('version 2\n');
  await assertRefused(s, `${repo.bare}#main`, /the commit: it is not signed/, '1');
});

test('git: GPG signatures are accepted with gpg-keyring; a key outside it is refused', async (t) => {
  const root = await temporaryDirectory(t);
  const gnupg = join(root, 'gnupg');
  await mkdir(gnupg, { mode: 0o700 });
  const gpg = (...args: string[]) => run('gpg', ['--batch', '--quiet', '--homedir', gnupg, ...args]);
  await gpg('--passphrase', '', '--quick-gen-key', 'Release Bot <release@example.com>', 'ed25519', 'sign', 'never');
  await gpg('--passphrase', '', '--quick-gen-key', 'Stranger <stranger@example.com>', 'ed25519', 'sign', 'never');
  const keyring = join(root, 'release.gpg');
  await writeFile(keyring, (await gpg('--armor', '--export', 'release@example.com')).stdout);
  const { s, repo, remote } = await gitSetup(t, `gpg-keyring = ${keyring}\n`);
  const signedCommit = async (content: string, who: string) => {
    await writeFile(join(repo.work, 'index.html'), content);
    await git(repo.work, 'add', '-A');
    await run('git', ['-c', 'user.email=t@example.invalid', '-c', 'user.name=T', '-c', 'gpg.format=openpgp', '-c', `user.signingkey=${who}`, 'commit', '-q', '-S', '-m', 'gpg'], {
      cwd: repo.work,
      env: { ...process.env, GNUPGHOME: gnupg },
    });
    await repo.push(true);
  };
  await signedCommit('version 1\n', 'release@example.com');
  const accepted = await runCli(s.sandbox.args(remote));
  assert.equal(accepted.code, 0, accepted.stderr);
  await signedCommit('version 2\n', 'stranger@example.com');
  await assertRefused(s, remote, /the commit: it is signed by a key that is not an allowed signer/, '1');
});

test('git: refuse-rewrites refuses a revision that does not descend from the live one; without it, force-pushes are followed', async (t) => {
  const { s, repo, commit, remote } = await gitSetup(t, 'refuse-rewrites = yes\n');
  const first = await commit('version 1\n', s.keys.trusted);
  await commit('version 2\n', s.keys.trusted);
  assert.equal((await runCli(s.sandbox.args(remote))).code, 0);
  await repo.resetHard(first);
  await commit('version 3\n', s.keys.trusted);
  await assertRefused(s, remote, /it does not descend from the live commit [0-9a-f]{12} \(refuse-rewrites is set\)/, '2');

  await writeFile(s.sandbox.config, `allowed-signers = ${s.keys.allowedSigners}\n`);
  const followed = await runCli(s.sandbox.args(remote));
  assert.equal(followed.code, 0, followed.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 3\n');
});

test('repo-deploy verify: intact, a changed file, a deleted file, an added file', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await runCli(s.sandbox.args(s.archive))).code, 0);
  const verify = () => runCli(['verify', '-c', s.sandbox.config, '-l', s.sandbox.live, '--cache', s.sandbox.cache]);
  const intact = await verify();
  assert.equal(intact.code, 0, intact.stderr);
  assert.match(intact.stdout, /is intact: every file matches its manifest/);

  await writeFile(join(s.sandbox.live, 'index.html'), 'defaced\n');
  const changed = await verify();
  assert.equal(changed.code, 8);
  assert.match(changed.stdout, /^changed: index\.html$/m);

  await unlink(join(s.sandbox.live, 'index.html'));
  await writeFile(join(s.sandbox.live, 'backdoor.php'), '<?php');
  const both = await verify();
  assert.equal(both.code, 8);
  assert.match(both.stdout, /^missing: index\.html$/m);
  assert.match(both.stdout, /^extra: +backdoor\.php$/m);
  assert.match(both.stdout, /differs from what was deployed: 2 differences/);
});

test('git: a gpg-keyring that gpg cannot import is a config error (exit 2) naming the file, not an internal error', async (t) => {
  const root = await temporaryDirectory(t);
  const keyring = join(root, 'not-a-keyring.asc');
  await writeFile(keyring, 'this is not an OpenPGP keyring\n');
  const { s, commit, remote } = await gitSetup(t, `gpg-keyring = ${keyring}\n`);
  await commit('version 1\n', s.keys.trusted);
  const result = await runCli(s.sandbox.args(remote));
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /cannot import gpg-keyring .*not-a-keyring\.asc: .*; give an exported public keyring/);
  await assert.rejects(readFile(join(s.sandbox.live, 'index.html')));
});

test('with a trust setting on, a release deployed before it was (unverified) never goes live again: rollback refuses it (exit 8, --force too), and a missing live release is not replaced by it', async (t) => {
  const s = await setup(t);
  const remote = s.archive;
  const common = ['-c', s.sandbox.config, '-l', s.sandbox.live, '--cache', s.sandbox.cache, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks];
  // Version 1 deployed with no trust setting: unverified.
  await writeFile(s.sandbox.config, '');
  await zipTree({ 'index.html': 'version 1\n' }, s.archive, s.root);
  assert.equal((await runCli(s.sandbox.args(remote))).code, 0);
  // Verification turned on; version 2 signed and deployed.
  await writeFile(s.sandbox.config, `allowed-signers = ${s.keys.allowedSigners}\n`);
  await s.publish('2');
  assert.equal((await runCli(s.sandbox.args(remote))).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');

  for (const force of [[], ['--force']]) {
    const refused = await runCli(['rollback', ...force, '-r', remote, ...common]);
    assert.equal(refused.code, 8, refused.stderr);
    assert.match(refused.stderr, /refusing to roll back: release \S+ was deployed without verification, and allowed-signers asks for verified content/);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  }

  // The live release deleted by hand and the remote gone: version 1 is not made live in its place.
  const live = await s.sandbox.liveTarget();
  await rm(join(s.sandbox.root, 'www', live), { recursive: true, force: true });
  await rm(s.archive);
  const repaired = await runCli(s.sandbox.args(remote));
  assert.notEqual(repaired.code, 0);
  assert.match(repaired.stderr, /no other verified release is on disk/);
  assert.equal(await s.sandbox.liveTarget(), live, 'the live link still names the missing release, not the unverified one');

  // With verification off again, the operator may roll back to it.
  await writeFile(s.sandbox.config, '');
  const allowed = await runCli(['rollback', '-r', remote, ...common]);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});
