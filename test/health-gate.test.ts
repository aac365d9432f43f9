// The health gate: after the post-update hooks of an update, health-check (a command or a URL)
// must pass (and with health-settle keep passing); a failure, or a crash during the gate,
// reverts the update exactly like a failed post-update hook, and counts as a failed attempt.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runCli } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { setup, type Setup } from './helpers/zip-agent.js';

/** Version 1 deployed without a gate, then the config gains `gateConfig` and version 2 is published. */
async function liveThenGated(t: TestContext, gateConfig: (root: string) => string): Promise<Setup> {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(s.sandbox.config, gateConfig(s.root));
  await s.publish('2');
  return s;
}

const lines = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean);

test('a health check command that passes commits the update; it runs after the post-update hooks, with the hooks\' environment', async (t) => {
  const s = await liveThenGated(t, (root) => `health-check = echo "gate phase=$REPO_DEPLOY_PHASE revision=$REPO_DEPLOY_REVISION current=$CURRENT_CONFIG" >> ${join(root, 'hooks.log')}\n`);
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /health gate passed/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  const log = await s.hookLines();
  const gate = log.findIndex((line) => line.startsWith('gate '));
  assert.ok(gate > 0 && /phase=post-update/.test(log[gate - 1] ?? ''), log.join('\n'));
  const state = await s.state();
  assert.match(log[gate] ?? '', new RegExp(`gate phase=health-check revision=${state.current.revision} current=.*releases/${state.current.release}$`));
});

test('a failing health check reverts the update like a failed post-update hook (hooks in phase revert, exit 5, a failed attempt)', async (t) => {
  const s = await liveThenGated(t, () => 'health-check = echo "503 from the app" && exit 3\n');
  const live = await s.sandbox.liveTarget();
  const result = await s.once();
  assert.equal(result.code, 5, result.stderr);
  assert.match(result.stderr, /reverted: the health check failed: the command exited with 3: 503 from the app/);
  assert.equal(await s.sandbox.liveTarget(), live);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.ok((await s.hookLines()).at(-1)?.includes('phase=revert'));
  const state = await s.state();
  assert.equal(state.failures[0]?.count, 1);
  assert.equal(state.inProgress, undefined);
});

test('health-settle: the check must keep passing; a failure at a later try reverts, and one that keeps passing commits', async (t) => {
  const tries = (root: string) => join(root, 'gate-tries');
  const flaky = await liveThenGated(t, (root) => `health-settle = 2\nhealth-interval = 1\nhealth-check = echo try >> ${tries(root)}; [ "$(wc -l < ${tries(root)})" -lt 2 ]\n`);
  const reverted = await flaky.once();
  assert.equal(reverted.code, 5, reverted.stderr);
  assert.match(reverted.stderr, /the health check failed at try 2, \d+ s into health-settle: the command exited with 1/);
  assert.equal(await flaky.sandbox.liveFile('index.html'), 'version 1\n');

  const steady = await liveThenGated(t, (root) => `health-settle = 2\nhealth-interval = 1\nhealth-check = echo try >> ${tries(root)}\n`);
  const committed = await steady.once();
  assert.equal(committed.code, 0, committed.stderr);
  assert.match(committed.stderr, /health gate passed for 2 s/);
  assert.ok((await lines(tries(steady.root))).length >= 2, 'tried more than once during health-settle');
  assert.equal(await steady.sandbox.liveFile('index.html'), 'version 2\n');
});

test('a health check URL must answer 2xx: 200 commits, 500 reverts', async (t) => {
  let status = 200;
  const server = createServer((_request, response) => response.writeHead(status).end('health\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
  const s = await liveThenGated(t, () => `health-check = ${url}\n`);
  assert.equal((await s.once()).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  status = 500;
  await s.publish('3');
  const failed = await s.once();
  assert.equal(failed.code, 5, failed.stderr);
  assert.match(failed.stderr, new RegExp(`the health check failed: ${url.replace(/[.]/g, '\\.')} answered HTTP 500`));
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});

test('status shows the gate in progress; a kill -9 during the gate is undone at the next start like one after the swap (revert)', async (t) => {
  const s = await liveThenGated(t, () => 'health-check = true\n');
  const common = ['-c', s.sandbox.config, '--cache', s.sandbox.cache, '-l', s.sandbox.live];
  const live = await s.sandbox.liveTarget();
  const agent = startAgent(t, s.sandbox.args(s.remote), { REPO_DEPLOY_TEST_PAUSE_AT: 'gate' });
  await agent.waitFor(/paused at gate/);
  const during = await runCli(['status', ...common]);
  assert.match(during.stdout, /in progress: +update to \S+ \(revision [0-9a-f]{12}\), now in the health gate \(not committed until it passes\), by process \d+/);
  agent.child.kill('SIGKILL');
  await agent.done;
  const after = await runCli(['status', ...common]);
  assert.match(after.stdout, /interrupted: +update to \S+ during gate; the next check finishes or undoes it/);
  // The next run reverts first (the previous release live again, hooks in phase revert), then
  // counts the attempt as failed and, below max-attempts, deploys the revision anew.
  const next = await s.once();
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, new RegExp(`was interrupted during gate; reverting to ${basename(live)}`));
  assert.match(next.stderr, new RegExp(`reverted the live path to release ${basename(live)}`));
  assert.ok((await s.hookLines()).some((line) => line.includes('phase=revert')));
  assert.equal((await s.state()).failures.length, 0, 'the attempt counted, then was forgotten when the revision went live');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});
