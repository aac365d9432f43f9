// Stops and crashes in the middle of hooks: a stop is never a failure of the revision, no step
// starts after a stop was asked for, a stop is bounded even when hooks ignore SIGTERM, and a
// hook left running by a crashed agent is ended before anything else runs.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli, writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { setup, type Setup } from './helpers/zip-agent.js';

const isRunning = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
};

test('kill -9 of the agent while a post-update hook runs: the restart ends that hook\'s process group before the revert hooks run', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const pidFile = join(s.root, 'hook.pid');
  const childFile = join(s.root, 'hook-child.pid');
  const order = join(s.root, 'order.log');
  // Running means alive and not a zombie: the orphaned hook's zombie may linger where PID 1 does not reap it.
  await writeHook(s.sandbox.postHooks, '20-long', `if [ "$REPO_DEPLOY_PHASE" = revert ]; then
  state=$(cut -d' ' -f3 /proc/$(cat ${pidFile})/stat 2>/dev/null)
  if [ -n "$state" ] && [ "$state" != Z ]; then echo "revert while the old hook runs" >> ${order}; else echo "revert after the old hook ended" >> ${order}; fi
  exit 0
fi
[ -f ${pidFile} ] && exit 0
echo $$ > ${pidFile}
sleep 300 &
echo $! > ${childFile}
wait`);
  const agent = s.agent();
  await agent.waitFor(/running post-update hook 20-long/);
  // The kill comes once the journal names the hook (it is written as the hook starts; a kill in
  // the instant between the two is the one case this cannot cover).
  while (!(await readFile(childFile, 'utf8').catch(() => '')) || (await s.state()).inProgress?.hookProcess?.hook !== '20-long') {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  agent.child.kill('SIGKILL');
  await agent.done;
  const hookPid = Number(await readFile(pidFile, 'utf8'));
  const childPid = Number(await readFile(childFile, 'utf8'));
  assert.ok(await isRunning(hookPid), 'kill -9 of the agent left the hook running');

  const restart = await s.once();
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stderr, /ended hook 20-long \(process group \d+\), left running by the interrupted run/);
  assert.ok(!(await isRunning(hookPid)) && !(await isRunning(childPid)), 'the hook and its child are gone');
  assert.equal(await readFile(order, 'utf8'), 'revert after the old hook ended\n');
});

test('a stop that ends a running hook is not a failed attempt: three stops in a row never hold a good revision back', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\nstop-grace = 0\nmax-attempts = 2\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const gate = join(s.root, 'slow');
  await writeFile(gate, '');
  await writeHook(s.sandbox.preHooks, '20-slow', `[ -f ${gate} ] && sleep 300\nexit 0`);
  for (let stop = 1; stop <= 3; stop++) {
    const agent = s.agent();
    await agent.waitFor(/running pre-update hook 20-slow/);
    const result = await agent.stop('SIGTERM');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /abandoned because the agent is stopping.*; it is not counted as a failure/);
  }
  const state = await s.state();
  assert.equal(state.heldBack, undefined);
  assert.deepEqual(state.failures, []);
  await writeFile(gate, '').then(() => import('node:fs/promises')).then(({ rm }) => rm(gate));
  const after = await s.once();
  assert.equal(after.code, 0, after.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});

test('SIGTERM during a pre-update hook that then succeeds: no swap and no post-update hook; the next start deploys', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\nstop-grace = 30\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const release = join(s.root, 'release-hook');
  await writeHook(s.sandbox.preHooks, '20-waits', `while [ ! -f ${release} ]; do sleep 0.05; done\nexit 0`);
  const hookLines = (await s.hookLines()).length;
  const agent = s.agent();
  await agent.waitFor(/running pre-update hook 20-waits/);
  agent.child.kill('SIGTERM');
  await agent.waitFor(/SIGTERM received/);
  await writeFile(release, '');
  const result = await agent.done;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /release .* is not made live; the next start tries again/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const newLines = (await s.hookLines()).slice(hookLines);
  assert.ok(newLines.every((line) => line.includes('phase=pre-update')), `no post-update hook ran: ${newLines.join('\n')}`);
  const next = await s.once();
  assert.equal(next.code, 0, next.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});

test('hooks that ignore SIGTERM in post-update and in revert: a stop ends each after stop-grace, never waiting for hook-timeout', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\nstop-grace = 1\nhook-timeout = 600\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  await writeHook(s.sandbox.postHooks, '20-stubborn', `trap '' TERM\n[ "$REPO_DEPLOY_PHASE" = revert ] && echo "revert started"\nsleep 600 &\nwait $!\nwait $!`);
  const agent = s.agent();
  await agent.waitFor(/running post-update hook 20-stubborn/);
  const result = await agent.stop('SIGTERM');
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /post-update hook 20-stubborn was ended with its process group because the agent is stopping/);
  assert.match(result.stderr, /revert hook 20-stubborn timed out after 1 seconds and was killed/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('messages say one true thing: a revision held back after its last attempt, and one held back since a rollback', async (t) => {
  const s = await setup(t, 'max-attempts = 2\n');
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  await writeFile(join(s.root, 'post-exit'), '1');
  const first = await s.once();
  assert.match(first.stderr, /reverted: .*; the next check tries again/);
  const second = await s.once();
  assert.equal(second.code, 5);
  assert.doesNotMatch(second.stderr, /next check tries again/);
  assert.match(second.stderr, /it is now held back/);

  const { rm } = await import('node:fs/promises');
  await rm(join(s.root, 'post-exit'));
  await s.publish('3');
  assert.equal((await s.once()).code, 0);
  assert.equal((await runCli(['rollback', ...common])).code, 0);
  // The remote still holds revision 3, the one rolled away from.
  const afterRollback = await s.once();
  assert.equal(afterRollback.code, 0, afterRollback.stderr);
  assert.doesNotMatch(afterRollback.stderr, /up to date/);
  assert.match(afterRollback.stderr, /revision [0-9a-f]{12} on the remote is held back since the rollback to release .*; run "repo-deploy retry" to deploy it/);
});

test('a hook that prints a 300 MB line and 100 MB of short lines: memory and log stay bounded, and the log says what was dropped', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  await writeHook(s.sandbox.postHooks, '20-chatty', 'head -c 300000000 /dev/zero | tr "\\000" a\necho\nyes "a short line of output" | head -c 100000000\nexit 0');
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { cliPath } = await import('./helpers/cli.js');
  const { stderr } = await promisify(execFile)('/usr/bin/time', ['-f', 'peak-kb=%M', process.execPath, cliPath, ...s.sandbox.args(s.remote)], { maxBuffer: 64 << 20 });
  assert.match(stderr, /\[20-chatty\] a{100,}\.\.\. \(299995904 more bytes of this line cut\)/);
  assert.match(stderr, /\[20-chatty\] \d+ more lines \(\d+ bytes\) of output were not logged: a hook logs at most 1048576 bytes a run/);
  assert.match(stderr, /deployed revision/);
  assert.ok(stderr.length < 4 * 1024 * 1024, `the log stays small: ${stderr.length} bytes`);
  const peakKb = Number(/peak-kb=(\d+)/.exec(stderr)?.[1]);
  assert.ok(peakKb < 200 * 1024, `peak memory ${Math.round(peakKb / 1024)} MiB, not the size of the output`);
});

test('updates whose hooks finish quickly leave no interrupted switch behind: the hook journal never lands after the final state', async (t) => {
  const s = await setup(t);
  await writeHook(s.sandbox.postHooks, '20-brief', 'sleep 0.2');
  // A slow journal write (rare under load, made certain here) must still land before the final state.
  for (let version = 1; version <= 3; version++) {
    await s.publish(String(version));
    const result = await s.once([], { REPO_DEPLOY_TEST_DELAY_AT: 'hook-journal' });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await s.state()).inProgress, undefined, `after update ${version}, the state holds no switch in progress`);
  }
});

test('kill -9 between a temporary file\'s creation and its rename, 8 times: each leaves one, and the next start removes them all', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const { readdir } = await import('node:fs/promises');
  const temporaryFiles = async () => {
    const found: string[] = [];
    for (const directory of [s.sandbox.cache, join(s.root, 'www'), join(s.root, 'www', 'releases')]) {
      found.push(...(await readdir(directory)).filter((name) => /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/.test(name)).map((name) => join(directory, name)));
    }
    return found;
  };
  // Every file the agent writes atomically, in the cache, beside the live path and among the releases.
  const targets = ['write state.json', 'write agent.lock.owner', 'write .current.lock.owner', 'write .manifest-*'];
  const left = new Set<string>();
  for (let kill = 0; kill < 8; kill++) {
    await s.publish(String(kill + 2));
    const agent = startAgent(t, s.sandbox.args(s.remote), { REPO_DEPLOY_TEST_PAUSE_AT: targets[kill % targets.length] });
    await agent.waitFor(/paused at write/);
    agent.child.kill('SIGKILL');
    await agent.done;
    const now = await temporaryFiles();
    assert.ok(now.some((path) => !left.has(path)), `kill ${kill + 1} left a temporary file`);
    for (const path of now) left.add(path);
  }
  assert.equal(left.size, 8, [...left].join('\n'));
  // A directory of such a name (someone else's, in a shared parent) is no file of ours: left alone, and no obstacle.
  const { mkdir } = await import('node:fs/promises');
  const planted = join(s.root, 'www', '.current.lock.owner.999999999.0badcafe.tmp');
  await mkdir(planted);
  const restart = await s.once();
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stderr, /a temporary file left by a killed run/);
  assert.deepEqual(await temporaryFiles(), [planted], 'no temporary file is left');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 9\n');
});

test('SIGTERM in the first instants of a run, while it is still starting: it exits 0 as documented, not by the signal', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  for (const args of [s.sandbox.args(s.remote), s.daemonArgs()]) {
    // Paused for a moment before the settings are even read, and the signal sent inside that moment.
    const agent = startAgent(t, args, { REPO_DEPLOY_TEST_DELAY_AT: 'start' });
    await agent.waitFor(/delaying at start/);
    agent.child.kill('SIGTERM');
    const result = await agent.done;
    assert.equal(result.signal, null, `${args.includes('-f') ? '-f' : 'daemon'}: ended by the signal: ${result.stderr}`);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /SIGTERM received/);
    const { lstat } = await import('node:fs/promises');
    assert.equal(await lstat(s.sandbox.live).catch(() => undefined), undefined, 'nothing was deployed after the stop');
  }
});

/** Runs the CLI with `args` until the test pause point `point`, then kills it with -9. */
async function killedAtPause(t: TestContext, args: string[], point: string): Promise<void> {
  const agent = startAgent(t, args, { REPO_DEPLOY_TEST_PAUSE_AT: point });
  await agent.waitFor(new RegExp(`paused at ${point}`));
  agent.child.kill('SIGKILL');
  await agent.done;
}

/** The next run finds nothing interrupted to undo. */
async function assertNothingUndone(s: Setup): Promise<void> {
  const next = await s.once();
  assert.equal(next.code, 0, next.stderr);
  assert.doesNotMatch(next.stderr, /interrupted|reverting/);
}

test('kill -9 just after "deployed revision" is logged: the next start keeps that release live (the switch was committed before it was said)', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  await killedAtPause(t, s.sandbox.args(s.remote), 'deployed');
  await assertNothingUndone(s);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n', 'what the log said was deployed is what is live');
});

test('kill -9 of a rollback just after the history recorded it: the next start keeps the release rolled back to', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  assert.equal((await s.once()).code, 0);
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks];
  await killedAtPause(t, ['rollback', ...common], 'rolled back');
  await assertNothingUndone(s);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', 'the rollback the history recorded is what is live');
});
