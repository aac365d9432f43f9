// An idle git check asks the server only for branches and tags: a repository with 10,000
// refs/pull/* refs (a busy forge) must not send them all at every check. The bytes are counted
// by a relay between the agent and git daemon, on loopback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { makeSandbox, runCli } from './helpers/cli.js';
import { createRepository, git } from './helpers/git-repos.js';
import { startGitDaemon } from './helpers/git-servers.js';
import { listenOnLoopback } from './helpers/listen.js';
import { temporaryDirectory } from './helpers/temp.js';

test('an idle check of a branch on a server with 10,000 refs/pull/* refs receives a few KB, not every ref', async (t) => {
  const root = await temporaryDirectory(t);
  const repo = await createRepository(root);
  const commit = await repo.commit({ 'index.html': 'v1\n' });
  // Like a forge: every pull request keeps a ref.
  await new Promise<void>((resolve, reject) => {
    const child = spawn('git', ['update-ref', '--stdin'], { cwd: repo.bare, stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`update-ref exited ${code}`))));
    for (let pull = 1; pull <= 10_000; pull++) child.stdin.write(`create refs/pull/${pull}/head ${commit}\n`);
    child.stdin.end();
  });
  assert.equal((await git(repo.bare, 'for-each-ref', '--format=x')).trim().split('\n').length, 10_001);
  const daemon = await startGitDaemon(t, `${root}/srv`);
  const daemonPort = Number(new URL(daemon.url('app.git')).port);

  let bytesFromServer = 0;
  const relay = createServer((client: Socket) => {
    const upstream = connect(daemonPort, '127.0.0.1');
    upstream.on('data', (chunk: Buffer) => (bytesFromServer += chunk.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  const relayPort = await listenOnLoopback(t, relay);
  const sandbox = await makeSandbox(root);
  const remote = `git://127.0.0.1:${relayPort}/app.git#main`;
  const first = await runCli(sandbox.args(remote));
  assert.equal(first.code, 0, first.stderr);

  bytesFromServer = 0;
  const idle = await runCli(sandbox.args(remote));
  assert.equal(idle.code, 0, idle.stderr);
  assert.match(idle.stderr, /up to date/);
  // Every ref alone would be over 500 KB (10,000 lines of 40-hex id and name).
  t.diagnostic(`an idle check received ${bytesFromServer} bytes from the server`);
  assert.ok(bytesFromServer < 4096, `an idle check received ${bytesFromServer} bytes`);
});
