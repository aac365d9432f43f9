// An idle git check asks the server only for what it needs: a repository with 10,000
// refs/pull/* refs (a busy forge) must not send them all at every check. The bytes are counted
// by a relay between the agent and git daemon, on loopback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { makeSandbox, runCli } from './helpers/cli.js';
import { createRepository, git } from './helpers/git-repos.js';
import { startGitDaemon } from './helpers/git-servers.js';
import { startCountingRelay } from './helpers/counting-relay.js';
import { temporaryDirectory } from './helpers/temp.js';

test('an idle check of a branch on a server with 10,000 refs/pull/* refs receives a few KB, not every ref', async (t) => {
  const root = await temporaryDirectory(t);
  const repo = await createRepository(root);
  const commit = await repo.commit({ 'index.html': 'v1\n' });
  // Like a forge: every pull request keeps a ref.
  await createRefs(repo.bare, Array.from({ length: 10_000 }, (_, index) => `create refs/pull/${index + 1}/head ${commit}\n`));
  assert.equal((await git(repo.bare, 'for-each-ref', '--format=x')).trim().split('\n').length, 10_001);
  const daemon = await startGitDaemon(t, `${root}/srv`);
  const daemonPort = Number(new URL(daemon.url('app.git')).port);

  const relay = await startCountingRelay(t, daemonPort);
  const sandbox = await makeSandbox(root);
  const remote = `git://127.0.0.1:${relay.port}/app.git#main`;
  const first = await runCli(sandbox.args(remote));
  assert.equal(first.code, 0, first.stderr);

  relay.reset();
  const idle = await runCli(sandbox.args(remote));
  assert.equal(idle.code, 0, idle.stderr);
  assert.match(idle.stderr, /up to date/);
  // Every ref alone would be over 500 KB (10,000 lines of 40-hex id and name).
  t.diagnostic(`an idle check received ${relay.bytes} bytes from the server`);
  assert.ok(relay.bytes < 4096, `an idle check received ${relay.bytes} bytes`);
});

async function createRefs(bare: string, lines: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('git', ['update-ref', '--stdin'], { cwd: bare, stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`update-ref exited ${code}`))));
    child.stdin.end(lines.join(''));
  });
}

test('an idle check of a branch in a repository with 300 tags receives what `git ls-remote --heads URL main` receives', async (t) => {
  const root = await temporaryDirectory(t);
  const repo = await createRepository(root);
  const commit = await repo.commit({ 'index.html': 'v1\n' });
  await createRefs(repo.bare, Array.from({ length: 300 }, (_, index) => `create refs/tags/v1.${index} ${commit}\n`));
  const daemon = await startGitDaemon(t, `${root}/srv`);
  const relay = await startCountingRelay(t, Number(new URL(daemon.url('app.git')).port));
  const url = `git://127.0.0.1:${relay.port}/app.git`;
  const sandbox = await makeSandbox(root);
  assert.equal((await runCli(sandbox.args(`${url}#main`))).code, 0);

  relay.reset();
  const idle = await runCli(sandbox.args(`${url}#main`));
  assert.match(idle.stderr, /up to date/);
  const ours = relay.bytes;
  relay.reset();
  await git(root, 'ls-remote', '--heads', url, 'main');
  t.diagnostic(`idle check: ${ours} bytes; git ls-remote --heads: ${relay.bytes} bytes`);
  // 300 tags alone would be about 18 KB.
  assert.ok(ours <= relay.bytes * 1.1, `an idle check received ${ours} bytes, ls-remote --heads ${relay.bytes}`);
});

test('a tag remote is found after the branches, and a branch of the same name that appears later still wins', async (t) => {
  const root = await temporaryDirectory(t);
  const repo = await createRepository(root);
  const tagged = await repo.commit({ 'index.html': 'tagged\n' });
  await git(repo.bare, 'tag', 'release', tagged);
  const daemon = await startGitDaemon(t, `${root}/srv`);
  const sandbox = await makeSandbox(root);
  const remote = `${daemon.url('app.git')}#release`;
  const first = await runCli(sandbox.args(remote));
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'tagged\n');
  assert.match((await runCli(sandbox.args(remote))).stderr, /up to date/);

  const branched = await repo.commit({ 'index.html': 'branch\n' });
  await git(repo.bare, 'branch', 'release', branched);
  const next = await runCli(sandbox.args(remote));
  assert.equal(next.code, 0, next.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'branch\n');
});
