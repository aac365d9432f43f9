// An unprivileged user of the same host (`nobody`; the tests run as root) against a root agent:
// it must not be able to block, freeze or steer a deploy through the lock.
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { legacyLockSocketName, startLocalAttacker } from './helpers/local-attacker.js';
import { setup, type Setup } from './helpers/zip-agent.js';

/** Every name a local user could try to take or hold: both lock files and the old socket names. */
async function lockTargets(s: Setup): Promise<string[]> {
  await mkdir(s.sandbox.cache, { recursive: true });
  const files = [join(s.sandbox.cache, 'agent.lock'), join(s.root, 'www', '.current.lock')];
  return [...files, ...(await Promise.all(files.map(legacyLockSocketName)))];
}

test('a local user who takes the lock names first blocks no deploy (no "another run holds the lock")', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const attacker = await startLocalAttacker(t, s.root, 'squat', await lockTargets(s));
  // The old abstract names could be taken by anyone; the lock files cannot even be opened.
  assert.match(attacker.report, /repo-deploy-lock-[0-9a-f]+: bound/);
  assert.doesNotMatch(attacker.report, /flocked/);
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a local user holding on to the lock while a run holds it delays neither the release nor the exit', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const go = join(s.root, 'go');
  await writeHook(s.sandbox.preHooks, '05-wait', `echo "inside the lock"\nwhile [ ! -e "${go}" ]; do sleep 0.05; done`);
  const targets = await lockTargets(s);
  const run = startAgent(t, s.sandbox.args(s.remote));
  await run.waitFor(/inside the lock/);
  const attacker = await startLocalAttacker(t, s.root, 'hold', targets);
  await writeFile(go, '');
  const result = await run.done;
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(attacker.report, /flocked|connected/, attacker.report);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a live path whose directory other users can write is refused (they could take or swap its lock), and nothing is lost', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  await chmod(join(s.root, 'www'), 0o1777);
  const result = await s.once();
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /www can be written by users other than the agent's .*mode 1777.*chmod go-w/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('a lock file another user could open (mode 644) is refused with the fix, not trusted', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  await mkdir(s.sandbox.cache, { recursive: true });
  await writeFile(join(s.sandbox.cache, 'agent.lock'), '', { mode: 0o644 });
  const result = await s.once();
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /lock file .*agent\.lock is not a regular file of the agent's own user with mode 600.*rm /);
});
