// Operator control: deploy on push (POST /check), deploy windows, pause and resume, min-age.
// Windows and min-age run the real daemon loop on a virtual clock, so every instant is exact;
// the webhook, pause and -f cases run the real CLI against a real HTTP origin.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { renameSync } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CheckReport } from '../src/core/agent-context.js';
import { loadSettings } from '../src/settings/config.js';
import { runDaemon, Wakeups } from '../src/daemon/daemon.js';
import { createLogger } from '../src/base/log.js';
import { webhookHandler } from '../src/daemon/webhook.js';
import { makeSandbox, runCli, startCli, writeHook } from './helpers/cli.js';
import { freePort } from './helpers/git-servers.js';
import { temporaryDirectory } from './helpers/temp.js';
import { VirtualClock } from './helpers/virtual-clock.js';
import { setup } from './helpers/zip-agent.js';
import { zipTree } from './helpers/zips.js';

const secret = 'webhook-secret-for-tests-0123456789';

interface ClockRun {
  checks: Array<{ at: string; result: string; reason?: string; revision?: string }>;
  lines: string[];
  liveFile(): Promise<string>;
  state: { releases: Array<{ revision: string }>; waiting?: unknown };
}

/**
 * The daemon on a virtual clock starting at `start`, against a local zip holding version 1;
 * `afterCheck(n, publish)` may publish version 2 or 3 (built beforehand, so publishing is one
 * synchronous rename that is done before the daemon's next check); stops after `checks` checks.
 */
async function daemonOnClock(t: TestContext, configText: string, start: string, checks: number, afterCheck: (index: number, publish: (version: string) => void) => void = () => undefined): Promise<ClockRun> {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, configText);
  const archive = join(root, 'app.zip');
  for (const version of ['1', '2', '3']) await zipTree({ 'index.html': `version ${version}\n` }, join(root, `v${version}.zip`), root);
  const publish = (version: string) => renameSync(join(root, `v${version}.zip`), archive);
  publish('1');
  const settings = await loadSettings({ flags: { config: sandbox.config, remote: archive, local: sandbox.live, cache: sandbox.cache, preHooks: sandbox.preHooks, postHooks: sandbox.postHooks }, env: {}, cwd: root });
  const clock = new VirtualClock(Date.parse(start));
  const signals = new EventEmitter();
  const run: ClockRun = { checks: [], lines: [], liveFile: () => sandbox.liveFile('index.html'), state: { releases: [] } };
  const context = { settings, log: createLogger({ verbose: true, write: (line) => run.lines.push(line), now: clock.now }), env: {}, now: clock.now, lockWaitMs: 0 };
  await runDaemon({
    agent: context,
    apps: [{ context }],
    clock,
    random: () => 0,
    signals,
    onCheck: (outcome, startedAt) => {
      const report = outcome as CheckReport;
      run.checks.push({ at: startedAt.toISOString(), result: outcome instanceof Error ? `error: ${outcome.message}` : report.result, reason: 'reason' in report ? report.reason : undefined, revision: 'revision' in report ? report.revision : undefined });
      if (run.checks.length >= checks) signals.emit('SIGTERM');
      else afterCheck(run.checks.length - 1, publish);
    },
  });
  run.state = JSON.parse(await readFile(join(sandbox.cache, 'state.json'), 'utf8'));
  return run;
}

test('deploy window in its time zone: a revision waits, outside the window, and goes live at the first check inside it', async (t) => {
  // 10:00 in Berlin is 09:00 UTC in January; the window lasts an hour.
  const config = 'schedule = */30 * * * *\ndeploy-window = 0 10 * * * 1h\ndeploy-window-timezone = Europe/Berlin\n';
  const run = await daemonOnClock(t, config, '2026-01-05T08:00:00.000Z', 5, (index, publish) => {
    if (index === 2) publish('2');
    if (index === 3) publish('3');
  });
  assert.deepEqual(run.checks.map((check) => [check.at, check.result]), [
    ['2026-01-05T08:00:00.000Z', 'waiting'],
    ['2026-01-05T08:30:00.000Z', 'waiting'],
    ['2026-01-05T09:00:00.000Z', 'updated'],
    ['2026-01-05T09:30:00.000Z', 'updated'],
    ['2026-01-05T10:00:00.000Z', 'waiting'],
  ]);
  assert.match(run.checks[0]?.reason ?? '', /waits for the deploy window, which opens at 2026-01-05T09:00:00\.000Z/);
  assert.match(run.checks[4]?.reason ?? '', /opens at 2026-01-06T09:00:00\.000Z/);
  assert.equal(await run.liveFile(), 'version 2\n', 'version 3 came after the window closed');
  // Said once at info level; the same revision waiting again is a debug line, not log noise.
  assert.equal(run.lines.filter((line) => / INFO .*waits for the deploy window, which opens at 2026-01-05T09/.test(line)).length, 1, run.lines.join('\n'));
});

test('min-age: a revision is deployed once it has been seen unchanged for min-age; one replaced sooner is never deployed', async (t) => {
  const run = await daemonOnClock(t, 'schedule = */5 * * * *\nmin-age = 600\n', '2026-01-05T08:00:00.000Z', 4, (index, publish) => {
    if (index === 0) publish('2');
  });
  assert.deepEqual(run.checks.map((check) => [check.at, check.result]), [
    ['2026-01-05T08:00:00.000Z', 'waiting'],
    ['2026-01-05T08:05:00.000Z', 'waiting'],
    ['2026-01-05T08:10:00.000Z', 'waiting'],
    ['2026-01-05T08:15:00.000Z', 'updated'],
  ]);
  assert.match(run.checks[0]?.reason ?? '', /may be deployed from 2026-01-05T08:10:00\.000Z/);
  assert.match(run.checks[1]?.reason ?? '', /first seen at 2026-01-05T08:05:00\.000Z, it may be deployed from 2026-01-05T08:15:00\.000Z/);
  assert.notEqual(run.checks[0]?.revision, run.checks[1]?.revision);
  assert.ok(run.lines.some((line) => /which was waiting, is no longer on the remote .* it will not be deployed/.test(line)));
  assert.equal(await run.liveFile(), 'version 2\n');
  assert.deepEqual(run.state.releases.map((release) => release.revision), [run.checks[1]?.revision], 'version 1 was never deployed');
  assert.equal(run.state.waiting, undefined);
});

test('wake-ups: many requests for a check while one runs fold into one more check', async () => {
  const clock = new VirtualClock(Date.parse('2026-01-01T00:00:00.000Z'));
  const wakeups = new Wakeups();
  for (let request = 0; request < 3; request++) wakeups.requestCheck();
  await wakeups.waitUntil(clock.now().getTime() + 60_000, clock);
  assert.equal(clock.now().toISOString(), '2026-01-01T00:00:00.000Z', 'the first wait ends at once');
  await wakeups.waitUntil(clock.now().getTime() + 60_000, clock);
  assert.equal(clock.now().toISOString(), '2026-01-01T00:01:00.000Z', 'the requests were used up by one check');
});

test('POST /check: GitHub signature, GitLab token or bearer; 401 for a missing or wrong proof, 413 over 1 MiB, 429 with Retry-After within webhook-min-interval', async (t) => {
  let time = Date.parse('2026-01-01T00:00:00.000Z');
  let checks = 0;
  const lines: string[] = [];
  const handler = webhookHandler({ secret, minIntervalMs: 5000, now: () => new Date(time), requestCheck: () => checks++, log: createLogger({ verbose: true, write: (line) => lines.push(line) }) });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/check`;
  const post = async (headers: Record<string, string>, body = '{"ref":"refs/heads/main"}') => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    return { status: response.status, retryAfter: response.headers.get('retry-after') };
  };
  const githubSignature = (body: string, key = secret) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;

  assert.equal((await fetch(url)).status, 405);
  assert.equal((await post({})).status, 401);
  assert.equal((await post({ authorization: 'Bearer not-the-secret-at-all-000000' })).status, 401);
  assert.equal((await post({ 'x-gitlab-token': 'not-the-secret-at-all-000000' })).status, 401);
  assert.equal((await post({ 'x-hub-signature-256': githubSignature('{"ref":"refs/heads/main"}', 'another-secret-entirely-0000') })).status, 401);
  assert.equal((await post({ 'x-hub-signature-256': githubSignature('{"ref":"refs/heads/other"}') })).status, 401, 'a signature of another body');
  const big = 'x'.repeat(1024 * 1024 + 1);
  assert.equal((await post({ 'x-hub-signature-256': githubSignature(big) }, big)).status, 413);
  assert.equal(checks, 0, 'nothing was triggered');

  assert.deepEqual(await post({ 'x-hub-signature-256': githubSignature('{"ref":"refs/heads/main"}') }), { status: 202, retryAfter: null });
  assert.equal(checks, 1);
  assert.deepEqual(await post({ authorization: `Bearer ${secret}` }), { status: 429, retryAfter: '5' }, 'a replay at once');
  time += 2000;
  assert.deepEqual(await post({ 'x-gitlab-token': secret }), { status: 429, retryAfter: '3' });
  time += 3000;
  assert.deepEqual(await post({ 'x-gitlab-token': secret }), { status: 202, retryAfter: null });
  time += 5000;
  assert.deepEqual(await post({ authorization: `Bearer ${secret}` }), { status: 202, retryAfter: null });
  assert.equal(checks, 3);
  assert.ok(lines.some((line) => /POST \/check from 127\.0\.0\.1 refused: no X-Hub-Signature-256/.test(line)));
  assert.ok(!lines.some((line) => line.includes(secret)), 'the secret is never logged');
});

test('deploy on push against the real daemon: a signed POST /check deploys now, a replay is 429, a bad one triggers nothing; without a secret /check is 404', async (t) => {
  const port = await freePort();
  const root = await temporaryDirectory(t);
  const secretFile = join(root, 'webhook-secret');
  await writeFile(secretFile, `${secret}\n`, { mode: 0o600 });
  const s = await setup(t, `schedule = 0 0 1 1 *\nhttp-listen = 127.0.0.1:${port}\nwebhook-secret = ${secretFile}\nwebhook-min-interval = 3600\n`);
  await s.publish('1');
  const agent = s.agent(['-v']);
  await agent.waitFor(/deployed revision/);
  await s.publish('2');
  const url = `http://127.0.0.1:${port}/check`;
  const body = '{"ref":"refs/heads/main"}';
  const post = (headers: Record<string, string>) => fetch(url, { method: 'POST', headers, body });
  assert.equal((await post({})).status, 401);
  assert.equal((await post({ 'x-hub-signature-256': 'sha256=0000' })).status, 401);
  const signed = { 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` };
  const before = agent.lines.length;
  assert.equal((await post(signed)).status, 202);
  await agent.waitFor(/deployed revision/, 15_000, before);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  const replay = await post(signed);
  assert.equal(replay.status, 429);
  assert.ok(Number(replay.headers.get('retry-after')) > 3000, `Retry-After ${replay.headers.get('retry-after')}`);
  const result = await agent.stop();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(agent.lines.filter((line) => /DEBUG checking /.test(line)).length, 2, 'the check at start and the one the signed request asked for');
  assert.ok(!result.stderr.includes(secret), 'the secret is never logged');

  const plainPort = await freePort();
  const plain = await setup(t, `schedule = 0 0 1 1 *\nhttp-listen = 127.0.0.1:${plainPort}\n`);
  await plain.publish('1');
  const plainAgent = plain.agent();
  await plainAgent.waitFor(/POST \/check \(deploy on push\) is off: set webhook-secret/);
  assert.equal((await fetch(`http://127.0.0.1:${plainPort}/check`, { method: 'POST', headers: { authorization: `Bearer ${secret}` } })).status, 404);
  assert.equal((await plainAgent.stop()).code, 0);
});

/** An hour of the day twelve hours away: a window there is closed now, whenever the test runs. */
function windowFarFromNow(): string {
  return `0 ${(new Date().getUTCHours() + 12) % 24} * * * 1h`;
}

test('-f outside the deploy window exits 0 and says so, without downloading again; --ignore-window deploys; a rollback is never held', async (t) => {
  const s = await setup(t, `deploy-window = ${windowFarFromNow()}\ndeploy-window-timezone = UTC\n`);
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live];
  await s.publish('1');
  const waiting = await s.once();
  assert.equal(waiting.code, 0, waiting.stderr);
  assert.match(waiting.stderr, /nothing deployed: revision [0-9a-f]{12} waits for the deploy window, which opens at \S+ \(-f --ignore-window deploys it now\)/);
  await assert.rejects(access(s.sandbox.live), /ENOENT/, 'nothing is live');
  const status = await runCli(['status', ...common]);
  assert.match(status.stdout, /waiting: +revision [0-9a-f]{12} waits for the deploy window/);
  assert.match(status.stdout, /deploy window: +closed, opens at /);

  const again = await s.once();
  assert.equal(again.code, 0, again.stderr);
  assert.equal(s.server.requests.at(-1)?.status, 304, 'the waiting revision is not downloaded again');

  const forced = await s.once(['--ignore-window']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  await s.publish('2');
  assert.equal((await s.once(['--ignore-window'])).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  const rollback = await runCli(['rollback', ...common, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks]);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', 'a rollback is not held by the window');

  const misplaced = await runCli([...s.daemonArgs(), '--ignore-window']);
  assert.equal(misplaced.code, 2);
  assert.match(misplaced.stderr, /--ignore-window goes with -f/);
});

test('a deploy-window entry that does not parse is an error naming it, at start and in check-config', async (t) => {
  for (const [entry, message] of [
    ['0 9 * * 1-5 8x', /the deploy-window entry "0 9 \* \* 1-5 8x" ends in "8x", which is not a duration/],
    ['0 99 * * * 1h', /the deploy-window entry "0 99 \* \* \* 1h" has no valid cron expression/],
    ['9am 8h', /the deploy-window entry "9am 8h" is not "<cron expression> <duration>"/],
  ] as const) {
    const s = await setup(t, `deploy-window = 0 9 * * * 1h; ${entry}\n`);
    await s.publish('1');
    const run = await s.once();
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
    const check = await runCli(['check-config', ...s.sandbox.args(s.remote).filter((argument) => argument !== '-f')]);
    assert.equal(check.code, 2);
    assert.match(check.stderr, message);
  }
  const s = await setup(t, 'deploy-window-timezone = Mars/Olympus\n');
  const zone = await s.once();
  assert.equal(zone.code, 2);
  assert.match(zone.stderr, /deploy-window-timezone = "Mars\/Olympus" is not a time zone/);
});

test('pause survives a restart and holds -f, SIGHUP and the daemon; resume deploys what waited', async (t) => {
  const s = await setup(t, 'schedule = 0 0 1 1 *\n');
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live];
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const pause = await runCli(['pause', '--reason', 'incident 4711', ...common]);
  assert.equal(pause.code, 0, pause.stderr);
  assert.match(pause.stdout, /paused since \S+ by \S+@\S+: incident 4711; checks go on, nothing is deployed until "repo-deploy resume"/);

  await s.publish('2');
  const held = await s.once();
  assert.equal(held.code, 0, held.stderr);
  assert.match(held.stderr, /nothing deployed: revision [0-9a-f]{12} waits: the agent is paused since \S+ by \S+: incident 4711/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const status = await runCli(['status', '--json', ...common]);
  const report = JSON.parse(status.stdout);
  assert.equal(report.paused.reason, 'incident 4711');
  assert.equal(report.waiting.gate, 'paused');
  assert.equal((await s.once()).code, 0);
  assert.equal(s.server.requests.at(-1)?.status, 304, 'the waiting revision is not downloaded again');

  const agent = s.agent(['-v']);
  await agent.waitFor(/waits: the agent is paused/);
  const beforeHangUp = agent.lines.length;
  agent.child.kill('SIGHUP');
  await agent.waitFor(/waits: the agent is paused/, 15_000, beforeHangUp);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', 'SIGHUP does not override a pause');

  const resume = await runCli(['resume', ...common]);
  assert.equal(resume.code, 0, resume.stderr);
  assert.match(resume.stdout, /resumed \(was paused since .*incident 4711\); revision [0-9a-f]{12}, which waited, is deployed at the next check/);
  const beforeResumeCheck = agent.lines.length;
  agent.child.kill('SIGHUP');
  await agent.waitFor(/deployed revision/, 15_000, beforeResumeCheck);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  assert.equal((await agent.stop()).code, 0);
  assert.match((await runCli(['resume', ...common])).stdout, /not paused: nothing to resume/);
});

test('a pause during an update lets that update finish, says so, and holds the next one', async (t) => {
  const s = await setup(t);
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live];
  const started = join(s.root, 'hook-started');
  const go = join(s.root, 'hook-go');
  await writeHook(s.sandbox.preHooks, '05-wait', `touch ${started}\nwhile [ ! -e ${go} ]; do sleep 0.05; done`);
  await s.publish('1');
  const update = startCli(s.sandbox.args(s.remote));
  t.after(() => update.child.kill('SIGKILL'));
  while (!(await access(started).then(() => true, () => false))) await sleep(50);
  const pause = await runCli(['pause', ...common]);
  assert.equal(pause.code, 0, pause.stderr);
  assert.match(pause.stdout, /an update to release \S+ is under way \(step pre-update\): it finishes, or reverts, first; nothing is deployed after it/);
  await writeFile(go, '');
  const finished = await update.done;
  assert.equal(finished.code, 0, finished.stderr);
  assert.match(finished.stderr, /deployed revision/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  await s.publish('2');
  const next = await s.once();
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, /waits: the agent is paused/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});
