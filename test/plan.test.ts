// repo-deploy plan: what the next check would do, and proof that it changes nothing on disk (the
// live link, the releases, the state, the history; no staging left in the cache). A zip over HTTP
// and a git repository over file:// (the commits between the live revision and the new one).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeSandbox, runCli, type Sandbox } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { createRepository } from './helpers/git-repos.js';
import { temporaryDirectory } from './helpers/temp.js';
import { setup } from './helpers/zip-agent.js';
import { zipTree } from './helpers/zips.js';
import { rename } from 'node:fs/promises';

/** Everything plan must leave as it was: the live link, the release directories, the state and the history, byte for byte. */
async function snapshot(sandbox: Sandbox): Promise<string> {
  const hash = async (path: string) => createHash('sha256').update(await readFile(path).catch(() => Buffer.from('absent'))).digest('hex');
  return JSON.stringify({
    live: await sandbox.liveTarget().catch(() => 'none'),
    releases: (await readdir(join(sandbox.root, 'www', 'releases')).catch(() => [])).sort(),
    cache: (await readdir(sandbox.cache)).sort(),
    state: await hash(join(sandbox.cache, 'state.json')),
    history: await hash(join(sandbox.cache, 'history', 'history.jsonl')),
  });
}

test('plan of a zip: the revisions, each file added, changed and removed with its size, the hooks; nothing on disk changes; a pause says it would hold', async (t) => {
  const s = await setup(t);
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live, '-r', s.remote, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks];
  await zipTree({ 'index.html': 'version 1\n', 'old.txt': 'going away\n' }, join(s.root, 'app.zip'), s.root);
  assert.equal((await s.once()).code, 0);
  const next = join(s.root, 'next.zip');
  await zipTree({ 'index.html': 'version 22\n', 'css/site.css': 'body { margin: 0 }\n' }, next, s.root);
  await rename(next, join(s.root, 'app.zip'));
  const before = await snapshot(s.sandbox);

  const shown = await runCli(['plan', ...common]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^revision [0-9a-f]{12} -> [0-9a-f]{12} \(archive .*\)$/m);
  assert.match(shown.stdout, /^deployed at the next check$/m);
  assert.match(shown.stdout, /^files: 1 added, 1 changed, 1 removed /m);
  assert.match(shown.stdout, /^ {2}\+ css\/site\.css \(19 B\)$/m);
  assert.match(shown.stdout, /^ {2}~ index\.html \(10 -> 11 B\)$/m);
  assert.match(shown.stdout, /^ {2}- old\.txt \(11 B\)$/m);
  assert.match(shown.stdout, /pre-update hooks: 10-record; post-update hooks: 10-record; health gate: none/);
  assert.equal(await snapshot(s.sandbox), before, 'plan changed nothing');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  const json = JSON.parse((await runCli(['plan', '--json', ...common])).stdout) as { outcome: string; files: { list: Array<{ path: string; kind: string }> } };
  assert.equal(json.outcome, 'would-update');
  assert.deepEqual(json.files.list.map((change) => `${change.kind} ${change.path}`), ['added css/site.css', 'changed index.html', 'removed old.txt']);

  assert.equal((await runCli(['pause', '--reason', 'audit', ...common])).code, 0);
  const paused = await runCli(['plan', ...common]);
  assert.match(paused.stdout, /^not deployed at the next check: .*paused.*audit/m);
  assert.match(paused.stdout, /^files: 1 added, 1 changed, 1 removed/m);

  // After the real deploy, the plan is "up to date".
  assert.equal((await runCli(['resume', ...common])).code, 0);
  assert.equal((await s.once()).code, 0);
  const done = await runCli(['plan', ...common]);
  assert.match(done.stdout, /^up to date: the remote has the live revision [0-9a-f]{12}/m);
});

test('plan of a git remote lists the commits between the live revision and the new one (the shallow mirror deepened for it), and changes nothing live', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  const repo = await createRepository(root);
  await repo.commit({ 'site/index.html': 'v1\n' }, 'first page');
  await repo.push();
  const remote = `file://${repo.bare}/site#main`;
  assert.equal((await runCli(sandbox.args(remote))).code, 0);
  await repo.commit({ 'site/index.html': 'v2\n' }, 'second page');
  await repo.commit({ 'README.md': 'outside the subdirectory\n' }, 'docs only');
  await repo.commit({ 'site/about.html': 'about\n' }, 'about page');
  await repo.push();
  const before = await snapshot(sandbox);
  const plan = await runCli(['plan', ...sandbox.args(remote).filter((argument) => argument !== '-f')]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /^commits \(2\):\n {2}[0-9a-f]{7,} about page \(.+\)\n {2}[0-9a-f]{7,} second page \(.+\)$/m);
  assert.match(plan.stdout, /^files: 1 added, 1 changed, 0 removed/m);
  assert.equal(await snapshot(sandbox), before);
  assert.equal(await sandbox.liveFile('index.html'), 'v1\n');
});

test('a plan killed with -9 while it holds a staged revision leaves it in the cache; the next locked run removes it, and nothing live changed', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live, '-r', s.remote, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks];
  const killed = startAgent(t, ['plan', ...common], { REPO_DEPLOY_TEST_PAUSE_AT: 'plan staged' });
  await killed.waitFor(/paused at plan staged/);
  killed.child.kill('SIGKILL');
  await killed.done;
  const leftovers = (await readdir(s.sandbox.cache)).filter((name) => name.startsWith('plan-'));
  assert.equal(leftovers.length, 1);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const next = await s.once();
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, /removed .*plan-[0-9a-f]+, left by an interrupted plan/);
  assert.deepEqual((await readdir(s.sandbox.cache)).filter((name) => name.startsWith('plan-')), []);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});
