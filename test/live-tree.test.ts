// The live tree must always be whole: a live link whose release was removed by hand is noticed
// and repaired, a release renamed into place just before a crash is not leaked, and an operator's
// plain directory can be adopted as the release a failed first deploy falls back to.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { describeTree } from '../src/verify/manifest.js';
import { setup } from './helpers/zip-agent.js';
import { zipTree } from './helpers/zips.js';

test('a live link whose release directory was removed by hand: the check says so and redeploys the remote\'s revision', async (t) => {
  const s = await setup(t);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await rm(join(s.sandbox.live, '..', await s.sandbox.liveTarget()), { recursive: true });
  const status = await runCli(['status', ...common]);
  assert.match(status.stdout, /live: +MISSING: .* \(its directory is gone; the next check redeploys\)/);
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /points at release .* whose directory .* is missing \(removed by hand\?\)/);
  assert.doesNotMatch(result.stderr, /up to date/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a removed releases/ folder with the remote unreachable: nothing to fall back to is said plainly; a later check redeploys', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await rm(join(s.root, 'www', 'releases'), { recursive: true });
  s.server.route('/app.zip', { kind: 'status', status: 503 });
  const down = await s.once();
  assert.equal(down.code, 3, down.stderr);
  assert.match(down.stderr, /nothing is live at .*: its release is missing and no other release is on disk/);
  await s.publish('1');
  s.server.route('/app.zip', { kind: 'file', path: join(s.root, 'app.zip') });
  const up = await s.once();
  assert.equal(up.code, 0, up.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('the live release removed by hand and the remote unreachable: the newest release left on disk goes live, hooks in phase rollback', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  assert.equal((await s.once()).code, 0);
  await rm(join(s.sandbox.live, '..', await s.sandbox.liveTarget()), { recursive: true });
  s.server.route('/app.zip', { kind: 'status', status: 503 });
  const hookLines = (await s.hookLines()).length;
  const result = await s.once();
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /the newest one on disk, is live in place of the missing one/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.ok((await s.hookLines()).slice(hookLines).some((line) => line.includes('phase=rollback')));
});

test('kill -9 after a release got its final name but before the switch: the restart removes it; nothing leaks', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const firstRelease = await s.sandbox.liveTarget();
  await s.publish('2');
  const paused = startAgent(t, s.sandbox.args(s.remote), { REPO_DEPLOY_TEST_PAUSE_AT: 'staged' });
  await paused.waitFor(/paused at staged/);
  paused.child.kill('SIGKILL');
  await paused.done;
  assert.equal((await readdir(join(s.root, 'www', 'releases'))).filter((name) => !name.startsWith('.')).length, 2, 'the staged release is there');
  assert.equal(await s.sandbox.liveTarget(), firstRelease);

  const restart = await s.once();
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stderr, /interrupted during stage, before the swap; the live release is unchanged/);
  const onDisk = (await readdir(join(s.root, 'www', 'releases'))).filter((name) => !name.startsWith('.'));
  const known = (await s.state()).releases.map((release: { id: string }) => release.id);
  assert.deepEqual(onDisk.sort(), [...known].sort(), 'every release on disk is one the state knows');
});

test('adopt: the Python tool\'s plain directory becomes the first release, and a failed first deploy reverts to it', async (t) => {
  const s = await setup(t);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  await mkdir(s.sandbox.live);
  await writeFile(join(s.sandbox.live, 'index.html'), 'from the python tool\n');
  await s.publish('1');
  const refused = await s.once();
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /is a real directory, not a link made by repo-deploy; move it away .* or run "repo-deploy adopt" to make it the first release/);

  const adopted = await runCli(['adopt', ...common]);
  assert.equal(adopted.code, 0, adopted.stderr);
  assert.match(adopted.stdout, /adopted: .* is now a link to releases\//);
  assert.equal(await s.sandbox.liveFile('index.html'), 'from the python tool\n');
  const verify = await runCli(['verify', ...common]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);

  await writeFile(join(s.root, 'post-exit'), '1');
  const failed = await s.once();
  assert.equal(failed.code, 5, failed.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'from the python tool\n', 'the failed first deploy reverted to the adopted directory');
  await rm(join(s.root, 'post-exit'));
  assert.equal((await s.once()).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a failed first deploy with nothing to revert to: log and status say plainly that nothing is live', async (t) => {
  const s = await setup(t);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  await s.publish('1');
  await writeFile(join(s.root, 'post-exit'), '1');
  const failed = await s.once();
  assert.equal(failed.code, 5);
  assert.match(failed.stderr, /nothing is live at .* now: the live path is removed, as there was no release before/);
  const status = await runCli(['status', ...common]);
  assert.match(status.stdout, /live: +NOTHING IS LIVE: the first deploy was reverted at/);
});

test('rollback to a release whose files were deleted by hand is refused (exit 8); --force rolls back anyway', async (t) => {
  const s = await setup(t);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const first = await s.sandbox.liveTarget();
  await s.publish('2');
  assert.equal((await s.once()).code, 0);
  await rm(join(s.sandbox.live, '..', first, 'index.html'));
  const refused = await runCli(['rollback', ...common]);
  assert.equal(refused.code, 8, refused.stderr);
  assert.match(refused.stderr, /release .* is not what was deployed \(1 missing, 0 changed, 0 extra: missing index\.html\); refusing to roll back to it; .*--force/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  const forced = await runCli(['rollback', '--force', ...common]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await s.sandbox.liveTarget(), first);
});

test('verify-ignore: a shared/ link a pre-update hook adds is no difference for verify or rollback', async (t) => {
  const s = await setup(t, 'verify-ignore = shared\n');
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  const { writeHook } = await import('./helpers/cli.js');
  await mkdir(join(s.root, 'shared-data'));
  await writeHook(s.sandbox.preHooks, '05-shared', `ln -s ${join(s.root, 'shared-data')} "$CURRENT_CONFIG/shared"`);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const verify = await runCli(['verify', ...common]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  await s.publish('2');
  assert.equal((await s.once()).code, 0);
  assert.equal((await runCli(['rollback', ...common])).code, 0);
  await writeFile(s.sandbox.config, '');
  const strict = await runCli(['verify', ...common]);
  assert.equal(strict.code, 8, 'without verify-ignore the link is an extra path');
  assert.match(strict.stdout, /extra: +shared/);
});

test('the manifest of an extracted release, made from the hashes taken while extracting, is the one a full read of the tree gives', async (t) => {
  const s = await setup(t);
  const large = Buffer.alloc(3 * 1024 * 1024, 'large file line\n').toString();
  const tree = { 'index.html': 'version 1\n', 'assets/app.js': 'console.log(1)\n', 'assets/big.bin': large, 'bin/run': { content: '#!/bin/sh\n', mode: 0o755 }, 'latest': { symlink: 'index.html' } };
  await zipTree(tree, join(s.root, 'app.zip'), s.root);
  const deployed = await s.once();
  assert.equal(deployed.code, 0, deployed.stderr);
  const state = await s.state();
  const release = join(s.root, 'www', 'releases', state.current.release);
  const manifest = JSON.parse(await readFile(join(s.root, 'www', 'releases', `.manifest-${state.current.release}.json`), 'utf8'));
  assert.deepEqual(manifest.entries, await describeTree(release), 'the same entries, sizes, modes and sha256 as reading every file back');
  const verify = await runCli(['verify', '-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /is intact: every file matches its manifest/);
});

test('status during a switch that kill -9 interrupted after the swap: the live release is shown with its own revision, not the state\'s older one', async (t) => {
  const s = await setup(t);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const oldRevision = (await s.state()).current.revision as string;
  await s.publish('2');
  const paused = startAgent(t, s.sandbox.args(s.remote), { REPO_DEPLOY_TEST_PAUSE_AT: 'post-update' });
  await paused.waitFor(/paused at post-update/);
  paused.child.kill('SIGKILL');
  await paused.done;
  const journal = (await s.state()).inProgress;
  assert.equal(await s.sandbox.liveTarget(), `releases/${journal.release}`, 'the link already points at the new release');
  const status = await runCli(['status', '--json', ...common]);
  const report = JSON.parse(status.stdout);
  assert.deepEqual(report.live, { release: journal.release, revision: journal.revision });
  assert.notEqual(report.live.revision, oldRevision);
  const text = await runCli(['status', ...common]);
  assert.match(text.stdout, new RegExp(`live: +${journal.release} \\(revision ${journal.revision.replace('sha256:', '').slice(0, 12)}\\)`));
  assert.match(text.stdout, /interrupted: +update to .* during post-update; the next check finishes or undoes it/);
});
