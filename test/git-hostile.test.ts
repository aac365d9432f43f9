// Git remotes in hostile or broken surroundings: a mirror that git could mistake for a folder of
// another repository, credentials that must reach only their own server, submodules that vanish.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeSandbox, runCli, writeRecordingHook } from './helpers/cli.js';
import { createRepository, git } from './helpers/git-repos.js';
import { startGitHttpServer } from './helpers/git-servers.js';
import { temporaryDirectory } from './helpers/temp.js';

test('a broken mirror (garbage HEAD) whose cache sits inside another git work tree: no git command touches the outer repository', async (t) => {
  const root = await temporaryDirectory(t);
  // The operator keeps the agent's directories inside a repository of their own (an /etc kept in git, say).
  const outer = join(root, 'outer');
  await mkdir(outer);
  await git(root, 'init', '-q', '-b', 'main', outer);
  await writeFile(join(outer, 'committed.txt'), 'keep me\n');
  await git(outer, 'add', 'committed.txt');
  await git(outer, 'commit', '-q', '-m', 'outer');
  await git(outer, 'remote', 'add', 'origin', 'https://example.invalid/outer.git');
  const outerHead = await git(outer, 'rev-parse', 'HEAD');
  const outerConfig = await readFile(join(outer, '.git', 'config'), 'utf8');

  const sandbox = await makeSandbox(root);
  const cache = join(outer, 'cache');
  const repo = await createRepository(root);
  await repo.commit({ 'app/index.html': 'v1\n' });
  const remote = `${repo.bare}/app#main`;
  const args = () => ['-f', '-r', remote, '-l', sandbox.live, '--cache', cache, '--pre-hooks', sandbox.preHooks, '--post-hooks', sandbox.postHooks];
  const first = await runCli(args());
  assert.equal(first.code, 0, first.stderr);

  const [mirror] = await readdir(join(cache, 'git'));
  await writeFile(join(cache, 'git', mirror as string, '.git', 'HEAD'), 'garbage\n');
  await repo.commit({ 'app/index.html': 'v2\n' });
  const second = await runCli(args());

  assert.equal(await git(outer, 'rev-parse', 'HEAD'), outerHead, 'the outer HEAD is unchanged');
  assert.equal(await readFile(join(outer, '.git', 'config'), 'utf8'), outerConfig, 'the outer config (origin URL) is unchanged');
  assert.equal(await readFile(join(outer, 'committed.txt'), 'utf8'), 'keep me\n', 'the outer files are unchanged');
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /git mirror .* (is not a usable repository|has an unreadable repository).*rebuilding it/);
  assert.equal(await sandbox.liveFile('index.html'), 'v2\n');
});

test('a password in a git HTTP URL is sent only to that server: a submodule on another server never sees it', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, 'git-submodules = shallow\n');
  const repo = await createRepository(root);
  const libraryRoot = join(root, 'other');
  const library = await createRepository(libraryRoot, 'library');
  await library.commit({ 'lib.txt': 'library file\n' });
  const token = 'tok-only-for-app-7d41';
  const appServer = await startGitHttpServer(t, join(root, 'srv'), { auth: { user: 'deployer', password: token } });
  const otherServer = await startGitHttpServer(t, join(libraryRoot, 'srv'));
  await repo.commit({ 'app/index.html': 'v1\n' });
  await git(repo.work, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', otherServer.url('library.git'), 'app/vendor/library');
  await git(repo.work, 'commit', '-q', '-m', 'add submodule');
  await repo.push();

  const result = await runCli(sandbox.args(appServer.url('app.git/app#main', `deployer:${token}`)));
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await readFile(join(sandbox.live, 'vendor', 'library', 'lib.txt'), 'utf8'), 'library file\n');
  assert.ok(appServer.authorizations.length > 0, 'the app server got the credentials');
  assert.deepEqual(otherServer.authorizations, [], 'the submodule server got no credentials');
});

test('a nested submodule removed upstream is gone from the next release: the release holds exactly the commit\'s tree', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, 'git-submodules = recursive\n');
  const hookLog = join(root, 'hooks.log');
  await writeRecordingHook(sandbox.postHooks, '10-record', hookLog);
  const nested = await createRepository(root, 'nested');
  await nested.commit({ 'nested.txt': 'nested file\n' });
  const library = await createRepository(root, 'library');
  await library.commit({ 'lib.txt': 'library file\n' });
  await git(library.work, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', nested.bare, 'deps/nested');
  await git(library.work, 'commit', '-q', '-m', 'add nested');
  await library.push();
  const repo = await createRepository(root);
  await repo.commit({ 'app/index.html': 'v1\n' });
  await git(repo.work, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', library.bare, 'app/vendor/library');
  await git(repo.work, 'commit', '-q', '-m', 'add library');
  await repo.push();
  const remote = `${repo.bare}/app#main`;
  const first = await runCli(sandbox.args(remote));
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await sandbox.liveFile('vendor/library/deps/nested/nested.txt'), 'nested file\n');

  await git(library.work, 'rm', '-q', 'deps/nested');
  await git(library.work, 'commit', '-q', '-m', 'drop nested');
  await library.push();
  await git(repo.work, '-c', 'protocol.file.allow=always', 'submodule', 'update', '-q', '--remote', 'app/vendor/library');
  await git(repo.work, 'commit', '-q', '-am', 'bump library');
  await repo.push();
  const second = await runCli(sandbox.args(remote));
  assert.equal(second.code, 0, second.stderr);
  assert.equal(await sandbox.liveFile('vendor/library/lib.txt'), 'library file\n');
  await assert.rejects(access(join(sandbox.live, 'vendor', 'library', 'deps')), 'the removed nested submodule is not in the release');
});

test('a chain of symlinks in the repository that leaves the subdirectory through another link is refused', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const repo = await createRepository(root);
  // Each judged by its own text stays inside app/; followed through b, c reaches the repository root.
  await repo.commit({ 'app/index.html': 'v1\n', 'secret.txt': 'outside the release\n', 'app/d/b': { symlink: '..' }, 'app/d/c': { symlink: 'b/../secret.txt' } });
  const result = await runCli(sandbox.args(`${repo.bare}/app#main`));
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /"d\/c" is a symlink to "b\/..\/secret.txt", outside the release/);
  await assert.rejects(access(sandbox.live));
});
