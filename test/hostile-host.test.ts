// A host where others can write beside the agent's files, and where runs are killed and started
// at any instant: symlinks planted where the agent writes, kill -9 inside taking or releasing the
// lock, and many runs started at once right after the lock holder was killed.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { setup } from './helpers/zip-agent.js';

test('symlinks planted where the agent writes (lock owners, state) are replaced, never written through', async (t) => {
  const s = await setup(t);
  const victim = join(s.root, 'victim.txt');
  await writeFile(victim, 'precious\n');
  await mkdir(s.sandbox.cache, { recursive: true });
  for (const path of [join(s.root, 'www', '.current.lock.owner'), join(s.sandbox.cache, 'agent.lock.owner'), join(s.sandbox.cache, 'state.json')]) {
    await symlink(victim, path);
  }
  await s.publish('1');
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await readFile(victim, 'utf8'), 'precious\n', 'the victim file is untouched');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a releases/ or cache directory that is a symlink is refused with a clear error, not followed', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const elsewhere = join(s.root, 'elsewhere');
  await mkdir(elsewhere);
  await symlink(elsewhere, join(s.root, 'www', 'releases'));
  const releases = await s.once();
  assert.equal(releases.code, 2, releases.stderr);
  assert.match(releases.stderr, /releases is a symbolic link; repo-deploy does not follow links/);
  assert.deepEqual(await readdir(elsewhere), []);

  const other = await setup(t);
  await other.publish('1');
  await mkdir(join(other.root, 'real-cache'));
  await symlink(join(other.root, 'real-cache'), other.sandbox.cache);
  const cache = await other.once();
  assert.equal(cache.code, 2, cache.stderr);
  assert.match(cache.stderr, /cache is a symbolic link/);
  assert.deepEqual(await readdir(join(other.root, 'real-cache')), []);
});

for (const point of ['lock-taken', 'lock-releasing']) {
  test(`kill -9 at "${point}": the next run takes the lock at once`, async (t) => {
    const s = await setup(t);
    await s.publish('1');
    const paused = startAgent(t, s.sandbox.args(s.remote), { REPO_DEPLOY_TEST_PAUSE_AT: point });
    await paused.waitFor(new RegExp(`paused at ${point}`));
    paused.child.kill('SIGKILL');
    await paused.done;
    const next = await s.once();
    assert.equal(next.code, 0, next.stderr);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  });
}

test('eight runs started at once right after kill -9 of the lock holder: exactly one holds the lock at a time, in every round', async (t) => {
  // Never held back: every run that takes the lock runs the hook below.
  const s = await setup(t, 'max-attempts = 100000\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const inside = join(s.root, 'inside');
  const overlaps = join(s.root, 'overlaps.log');
  // Every lock holder reaches this hook (the revision never deploys); two at once would overlap.
  await writeHook(s.sandbox.preHooks, '05-exclusive', `mkdir "${inside}" 2>/dev/null || echo overlap >> "${overlaps}"\nsleep 0.2\nrmdir "${inside}"\nexit 1`);
  for (let round = 1; round <= 8; round++) {
    const holder = startAgent(t, s.sandbox.args(s.remote), { REPO_DEPLOY_TEST_PAUSE_AT: 'pre-update' });
    await holder.waitFor(/paused at pre-update/);
    holder.child.kill('SIGKILL');
    await holder.done;
    const results = await Promise.all(Array.from({ length: 8 }, () => runCli(s.sandbox.args(s.remote))));
    const codes = results.map((result) => result.code);
    assert.ok(codes.every((code) => code === 4 || code === 6), `round ${round}: only "blocked" and "lock held": ${codes}\n${results.map((r) => r.stderr).join('\n')}`);
    assert.ok(codes.includes(4), `round ${round}: one run took the lock: ${codes}`);
    assert.equal(await readFile(overlaps, 'utf8').catch(() => ''), '', `round ${round}: no two runs inside the lock at once`);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  }
});

test('a hook that leaves a process running in the background does not keep the lock: the next run takes it at once', async (t) => {
  // Its pid file lives outside the sandbox, which an earlier cleanup removes before this one runs.
  const pidDirectory = await mkdtemp(join(tmpdir(), 'repo-deploy-left-'));
  const leftPid = join(pidDirectory, 'left.pid');
  const s = await setup(t);
  await s.publish('1');
  // The left-over process inherits whatever descriptors the hook had: the lock's must not be one.
  await writeHook(s.sandbox.postHooks, '20-leave-behind', `setsid sh -c 'echo $$ >> "${leftPid}"; exec sleep 100000' </dev/null >/dev/null 2>&1 &`);
  // The hook runs on both deploys below: each leaves one process, and each is stopped by its pid.
  t.after(async () => {
    for (const pid of (await readFile(leftPid, 'utf8').catch(() => '')).split('\n').map(Number).filter((pid) => pid > 0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await rm(pidDirectory, { recursive: true, force: true });
  });
  const first = await s.once();
  assert.equal(first.code, 0, first.stderr);
  await s.publish('2');
  const next = await s.once();
  assert.equal(next.code, 0, next.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});
