// The long-running agent and its commands, driven as operators drive them.
import assert from 'node:assert/strict';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSandbox, runCli, startCli, writeHook, writeRecordingHook, type Sandbox } from './helpers/cli.js';
import { startAgent, type RunningAgent } from './helpers/daemon.js';
import { freePort } from './helpers/git-servers.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';
import { setup } from './helpers/zip-agent.js';

const timeOf = (line: string) => Date.parse(line.slice(0, 24));

test('the schedule (with a seconds field): a check at start, then each new version is deployed; SIGTERM exits 0', async (t) => {
  const s = await setup(t, 'schedule = * * * * * *\n');
  await s.publish('1');
  const agent = s.agent();
  await agent.waitFor(/deployed revision/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  await s.publish('2');
  await agent.waitFor(/deployed revision/, 10_000, agent.lines.findIndex((line) => /deployed revision/.test(line)) + 1);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  const result = await agent.stop('SIGTERM');
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /SIGTERM received: stopping/);
  assert.match(result.stderr, /repo-deploy stopped/);
});

test('an invalid schedule is a clear error at start that names the bad field', async (t) => {
  const s = await setup(t, 'schedule = 61 * * * *\n');
  const badField = await runCli(s.daemonArgs());
  assert.equal(badField.code, 2);
  assert.match(badField.stderr, /schedule "61 \* \* \* \*" is not a valid cron expression: minute/);
  await writeFile(s.sandbox.config, 'schedule = * * *\n');
  const fewFields = await runCli(s.daemonArgs());
  assert.equal(fewFields.code, 2);
  assert.match(fewFields.stderr, /has 3 fields; a cron expression has 5 .* or 6/);
});

test('checks never overlap: a slow hook spans several ticks and each check starts after the last ended', async (t) => {
  const s = await setup(t, 'schedule = * * * * * *\n');
  const spans = join(s.root, 'spans.log');
  await writeHook(s.sandbox.preHooks, '20-slow', `echo start >> ${spans}\nsleep 2\necho end >> ${spans}`);
  await s.publish('1');
  const agent = s.agent();
  await agent.waitFor(/deployed revision/);
  await s.publish('2');
  await agent.waitFor(/deployed revision/, 15_000, agent.lines.findIndex((line) => /deployed revision/.test(line)) + 1);
  await agent.stop();
  const events = (await readFile(spans, 'utf8')).trim().split('\n');
  assert.deepEqual(events, ['start', 'end', 'start', 'end']);
  assert.ok(!agent.lines.some((line) => /holds the lock/.test(line)), 'no check ever met another one\'s lock');
});

test('splay: every scheduled check starts within splay of its tick', async (t) => {
  const s = await setup(t, 'schedule = */2 * * * * *\nsplay = 1\n');
  await s.publish('1');
  const agent = s.agent(['-v']);
  await agent.waitFor(/deployed revision/);
  // The agent says which delay it drew for each tick: the assertion is on those, not on wall-clock time.
  const splays = () => agent.lines.map((line) => /tick \S+: checking after (\d+) ms of splay/.exec(line)?.[1]).filter((delay) => delay !== undefined).map(Number);
  while (splays().length < 4 || agent.lines.filter((line) => /DEBUG checking /.test(line)).length < 5) await sleep(200);
  await agent.stop();
  const offsets = splays();
  for (const offset of offsets) assert.ok(offset >= 0 && offset < 1000, `a check was delayed ${offset} ms after its tick, more than splay allows: ${offsets}`);
  assert.ok(offsets.some((offset) => offset > 20), `the delay is random, not always zero: ${offsets}`);
});

test('SIGHUP checks now', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\n');
  await s.publish('1');
  const agent = s.agent();
  await agent.waitFor(/deployed revision/);
  await s.publish('2');
  const before = agent.lines.length;
  agent.child.kill('SIGHUP');
  await agent.waitFor(/deployed revision/, 10_000, before);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  assert.equal((await agent.stop()).code, 0);
});

// No stopwatch: http-timeout and download-timeout are far beyond the test's own time limit, so
// only a stop that ends the download itself lets this test finish.
test('SIGTERM during a stalled download: the agent exits 0 promptly and the live release is untouched', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\nhttp-timeout = 3600\ndownload-timeout = 7200\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const live = await s.sandbox.liveTarget();
  await s.publish('2');
  let downloadStarted!: () => void;
  const downloading = new Promise<void>((resolve) => (downloadStarted = resolve));
  s.server.route('/app.zip', {
    kind: 'custom',
    respond: (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(1024 * 1024) });
      response.write('PK\x03\x04', 'latin1'); // and then nothing
      downloadStarted();
    },
  });
  const agent = s.agent(['-v']);
  await downloading;
  const result = await agent.stop('SIGTERM');
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /SIGTERM received: stopping after the check in progress/);
  assert.doesNotMatch(result.stderr, /http-timeout|download-timeout/, 'ended by the stop, not by a time limit');
  assert.equal(await s.sandbox.liveTarget(), live);
  assert.deepEqual(await readdir(join(s.sandbox.cache, 'downloads')).catch(() => []), []);
  // A stop is never a failure: no ERROR line, nothing counted, nothing for /healthz or the backoff.
  assert.doesNotMatch(result.stderr, / ERROR /);
  const status = JSON.parse((await runCli(['status', '--json', ...s.daemonArgs()])).stdout);
  assert.equal(status.lastCheck.result, 'stopped');
  assert.equal(status.consecutiveFailedChecks, 0);
  assert.equal(status.lastError, null);
});

test('SIGTERM during a hook: a hook that finishes within stop-grace completes the update', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\nstop-grace = 10\n');
  await writeHook(s.sandbox.postHooks, '20-slow', 'sleep 1\necho done');
  await s.publish('1');
  const agent = s.agent();
  await agent.waitFor(/running post-update hook 20-slow/);
  const result = await agent.stop('SIGTERM');
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /deployed revision/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('SIGTERM during a hook: one that outlasts stop-grace is ended with its group and the update reverted', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\nstop-grace = 1\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const live = await s.sandbox.liveTarget();
  await s.publish('2');
  const childPid = join(s.root, 'hook-child.pid');
  await writeHook(s.sandbox.postHooks, '20-hangs', `[ "$REPO_DEPLOY_PHASE" = revert ] && exit 0\nsleep 300 &\necho $! > ${childPid}\nwait`);
  const agent = s.agent();
  await agent.waitFor(/running post-update hook 20-hangs/);
  await sleep(300);
  const result = await agent.stop('SIGTERM');
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /20-hangs was ended with its process group because the agent is stopping/);
  assert.match(result.stderr, /reverted the live path/);
  assert.equal(await s.sandbox.liveTarget(), live);
  const pid = Number(await readFile(childPid, 'utf8'));
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  assert.ok(stat === '' || stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z', 'the hook\'s child ended too');
});

interface CrashCase {
  step: string;
  failingPostHook?: boolean;
  /** What the restart says about the interrupted attempt. */
  recovery: RegExp;
  /** The restart's exit code and the version live after it. */
  restartCode: number;
  liveAfter: string;
  revertHookRan: boolean;
}

const crashCases: CrashCase[] = [
  { step: 'downloaded', recovery: /deployed revision/, restartCode: 0, liveAfter: '2', revertHookRan: false },
  { step: 'extracting', recovery: /removed .*\.staging-.*left by an interrupted update/, restartCode: 0, liveAfter: '2', revertHookRan: false },
  { step: 'pre-update', recovery: /interrupted during pre-update, before the swap; the live release is unchanged/, restartCode: 0, liveAfter: '2', revertHookRan: false },
  { step: 'before-rename', recovery: /removed .*\.current\.swap-\d+, left by an interrupted update/, restartCode: 0, liveAfter: '2', revertHookRan: false },
  { step: 'post-update', recovery: /interrupted during post-update; reverting to/, restartCode: 0, liveAfter: '2', revertHookRan: true },
  { step: 'revert', failingPostHook: true, recovery: /interrupted during revert; reverting to/, restartCode: 5, liveAfter: '1', revertHookRan: true },
];

for (const crash of crashCases) {
  test(`kill -9 at "${crash.step}": the restart finds a complete live release, cleans up and finishes or undoes the step`, async (t) => {
    const s = await setup(t);
    await s.publish('1');
    assert.equal((await s.once()).code, 0);
    const firstRelease = await s.sandbox.liveTarget();
    await s.publish('2');
    if (crash.failingPostHook) await writeFile(join(s.root, 'post-exit'), '1');
    const paused = startAgent(t, s.sandbox.args(s.remote), { REPO_DEPLOY_TEST_PAUSE_AT: crash.step });
    await paused.waitFor(new RegExp(`paused at ${crash.step}`));
    paused.child.kill('SIGKILL');
    await paused.done;

    // Whatever instant the kill hit, the live path points at a complete release.
    const target = await s.sandbox.liveTarget();
    assert.match(await s.sandbox.liveFile('index.html'), /^version [12]\n$/);
    assert.ok(target === firstRelease || crash.step === 'post-update' || crash.step === 'revert', `live at ${target}`);

    const hookLinesBefore = (await s.hookLines()).length;
    const restart = await s.once();
    assert.equal(restart.code, crash.restartCode, restart.stderr);
    assert.match(restart.stderr, crash.recovery);
    assert.match(restart.stderr, /taking over the lock .* left by process \d+, which is no longer running/);
    assert.equal(await s.sandbox.liveFile('index.html'), `version ${crash.liveAfter}\n`);
    const newHookLines = (await s.hookLines()).slice(hookLinesBefore);
    assert.equal(newHookLines.some((line) => line.includes('phase=revert')), crash.revertHookRan, newHookLines.join('\n'));
    const releases = await readdir(join(s.sandbox.root, 'www', 'releases'));
    assert.ok(!releases.some((name) => name.startsWith('.staging-')), `no staging leftovers: ${releases}`);
    assert.ok(!(await readdir(join(s.sandbox.root, 'www'))).some((name) => name.includes('.swap-')), 'no swap link leftovers');
    assert.deepEqual(await readdir(join(s.sandbox.cache, 'downloads')).catch(() => []), []);
    assert.equal((await s.state()).inProgress, undefined);
  });
}

test('backoff: failed checks skip ticks for a doubling, capped delay', async (t) => {
  const s = await setup(t, 'schedule = * * * * * *\nretry-backoff = 1\nmax-backoff = 2\n');
  s.server.route('/app.zip', { kind: 'status', status: 500 });
  const agent = s.agent(['-v']);
  await agent.waitFor(/check failed 4 times in a row/, 20_000);
  await agent.stop();
  const waits = agent.lines.filter((line) => /check failed/.test(line)).map((line) => Number(/next check in (\d+) s/.exec(line)?.[1]));
  assert.deepEqual(waits.slice(0, 4), [1, 2, 2, 2]);
  const checks = agent.lines.filter((line) => /DEBUG checking /.test(line)).map(timeOf);
  assert.ok(checks[3]! - checks[2]! >= 1900, `after the cap, checks are at least 2 s apart: ${checks}`);
  assert.ok(agent.lines.some((line) => /scheduled check skipped: backing off/.test(line)));
});

test('max-attempts: a revision failing its hooks is held back (exit 7, nothing downloaded) until retry or a new revision', async (t) => {
  const s = await setup(t, 'max-attempts = 2\n');
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  await writeFile(join(s.root, 'post-exit'), '1');
  assert.equal((await s.once()).code, 5);
  const second = await s.once();
  assert.equal(second.code, 5);
  assert.match(second.stderr, /failed 2 times in a row and is held back: it is not tried again until the remote changes, or until you run "repo-deploy retry"/);

  s.server.resetCounters();
  const hookLines = (await s.hookLines()).length;
  const held = await s.once();
  assert.equal(held.code, 7, held.stderr);
  assert.match(held.stderr, /is still held back after repeated failures .*run "repo-deploy retry"/);
  assert.equal(s.server.bodyBytesSent, 0, 'a held-back revision is not downloaded again');
  assert.equal((await s.hookLines()).length, hookLines, 'and no hook runs');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  const status = JSON.parse((await runCli(['status', '--json', '--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config])).stdout);
  assert.equal(status.heldBack.reason, 'failed');

  const retry = await runCli(['retry', '--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config]);
  assert.equal(retry.code, 0);
  assert.match(retry.stdout, /is no longer held back; the next check tries it/);
  assert.equal((await s.once()).code, 5, 'retried, and still failing');

  await rm(join(s.root, 'post-exit'));
  await s.publish('3');
  const fixed = await s.once();
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 3\n');
});

test('status, releases, rollback (hooks in phase rollback; the rolled-away revision held back) and check-config', async (t) => {
  const s = await setup(t);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  for (const version of ['1', '2']) {
    await s.publish(version);
    assert.equal((await s.once()).code, 0);
  }
  const state = await s.state();
  const status = await runCli(['status', ...common]);
  assert.equal(status.code, 0);
  assert.match(status.stdout, new RegExp(`live: +${state.current.release}`));
  assert.match(status.stdout, new RegExp(`previous: +${state.previous.release}`));
  assert.match(status.stdout, /last check: .* updated/);
  const releases = await runCli(['releases', ...common]);
  assert.match(releases.stdout, new RegExp(`^\\* ${state.current.release} .*live$`, 'm'));
  const statuses = async () => (JSON.parse((await runCli(['releases', '--json', ...common])).stdout) as Array<{ status: string }>).map((release) => release.status);
  assert.deepEqual(await statuses(), ['previous', 'live']);

  const checkUnchanged = await runCli(['check-config', '-r', s.remote, ...common]);
  assert.equal(checkUnchanged.code, 0, checkUnchanged.stderr);
  assert.match(checkUnchanged.stdout, /found: +the remote is reachable and has the live revision/);

  const rollback = await runCli(['rollback', '-r', s.remote, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks, ...common]);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.match(rollback.stdout, new RegExp(`rolled back to ${state.previous.release}`));
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const rollbackHooks = (await s.hookLines()).slice(-2);
  assert.ok(rollbackHooks.every((line) => line.includes('phase=rollback')), rollbackHooks.join('\n'));
  assert.deepEqual(await statuses(), ['live', 'rolled-back']);

  const after = await s.once();
  assert.equal(after.code, 0, after.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', 'the rolled-away revision is not redeployed');
  const checkHeld = await runCli(['check-config', '-r', s.remote, ...common]);
  assert.match(checkHeld.stdout, /found: the remote is reachable; its revision [0-9a-f]{12} is held back since a rollback \("repo-deploy retry" deploys it\)/);
  await s.publish('3');
  const checkChanged = await runCli(['check-config', '-r', s.remote, ...common]);
  assert.match(checkChanged.stdout, /would be deployed at the next check/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', 'check-config deploys nothing');
  assert.equal((await s.once()).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 3\n', 'a new revision is deployed');
  assert.deepEqual(await statuses(), ['previous', 'rolled-back', 'live']);

  const noSuch = await runCli(['rollback', 'no-such-release', ...common]);
  assert.equal(noSuch.code, 2);
  assert.match(noSuch.stderr, /release no-such-release is not a complete release of this agent; repo-deploy releases lists/);
});

test('/healthz turns unhealthy after max-attempts failed checks in a row; /metrics has the counters', async (t) => {
  const port = await freePort();
  const s = await setup(t, `schedule = * * * * * *\nmax-attempts = 2\nretry-backoff = 1\nmax-backoff = 1\nhttp-listen = 127.0.0.1:${port}\n`);
  await s.publish('1');
  const agent = s.agent();
  await agent.waitFor(/deployed revision/);
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, text: await response.text() };
  };
  // The log line comes before the check has ended and been counted: wait for that.
  let healthy = await get('/healthz');
  while (JSON.parse(healthy.text).status === 'starting') {
    await new Promise((resolve) => setTimeout(resolve, 20));
    healthy = await get('/healthz');
  }
  assert.equal(healthy.status, 200);
  assert.equal(JSON.parse(healthy.text).status, 'ok');
  const metrics = await get('/metrics');
  assert.match(metrics.text, /repo_deploy_checks_total\{result="updated"\} 1/);
  assert.match(metrics.text, /repo_deploy_deploys_total 1/);
  assert.match(metrics.text, /repo_deploy_live_release_info\{release="\d{8}T\d{6}Z-[0-9a-f]{12}",revision="sha256:[0-9a-f]{64}"\} 1/);
  assert.match(metrics.text, /repo_deploy_last_success_timestamp_seconds \d+/);
  assert.match(metrics.text, /repo_deploy_check_duration_seconds_count \d+/);

  s.server.route('/app.zip', { kind: 'status', status: 500 });
  await agent.waitFor(/check failed 2 times in a row/, 15_000);
  const unhealthy = await get('/healthz');
  assert.equal(unhealthy.status, 503);
  assert.equal(JSON.parse(unhealthy.text).status, 'unhealthy');
  assert.match((await get('/metrics')).text, /repo_deploy_checks_total\{result="failed"\} [2-9]/);
  assert.equal((await agent.stop()).code, 0);
});

test('log-format = json: every log line is a JSON object with time, level, message, and the release it concerns', async (t) => {
  const s = await setup(t, 'log-format = json\n');
  await s.publish('1');
  const result = await s.once(['-v']);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stderr.trim().split('\n');
  const events = lines.map((line) => JSON.parse(line) as Record<string, string>);
  for (const event of events) {
    assert.ok(event.time && event.level && event.message, JSON.stringify(event));
    assert.ok(!Number.isNaN(Date.parse(event.time)));
  }
  const deployed = events.find((event) => event.message?.startsWith('deployed revision'));
  assert.match(deployed?.release ?? '', /^\d{8}T\d{6}Z-/);
  assert.match(deployed?.revision ?? '', /^sha256:/);
  assert.ok(events.some((event) => event.level === 'debug'));
});

test('a cron -f run while the daemon is checking finds the lock and exits 6', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\n');
  await writeHook(s.sandbox.preHooks, '20-slow', 'sleep 3');
  await s.publish('1');
  const agent = s.agent();
  await agent.waitFor(/running pre-update hook 20-slow/);
  const cron = await startCli(s.sandbox.args(s.remote)).done;
  assert.equal(cron.code, 6);
  await agent.waitFor(/deployed revision/);
  assert.equal((await agent.stop()).code, 0);
});
