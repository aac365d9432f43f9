// An operator's first hour (issue 23): commands that must not do the wrong thing, and mistakes
// that must end in one line naming the fix and the documented exit code, never a stack trace.
import assert from 'node:assert/strict';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { setup } from './helpers/zip-agent.js';

test('a revision held back after max-attempts stays held back after a rollback: the next -f does not try it again', async (t) => {
  const s = await setup(t, 'max-attempts = 2\n');
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks];
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  assert.equal((await s.once()).code, 0);
  await s.publish('3');
  await writeFile(join(s.root, 'post-exit'), '1');
  assert.equal((await s.once()).code, 5);
  assert.equal((await s.once()).code, 5);
  const held = await s.once();
  assert.equal(held.code, 7, held.stderr);
  await rm(join(s.root, 'post-exit'));

  const rollback = await runCli(['rollback', ...common]);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.match(rollback.stdout, /rolled back to .*; revision [0-9a-f]{12} stays held back \(failed\)/);

  const hooksBefore = (await s.hookLines()).length;
  const next = await s.once();
  assert.equal(next.code, 7, next.stderr);
  assert.match(next.stderr, /still held back after repeated failures/);
  assert.equal((await s.hookLines()).length, hooksBefore, 'no hook ran: the held-back revision was not tried');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const status = await runCli(['status', '--json', ...common]);
  assert.equal(JSON.parse(status.stdout).heldBack.reason, 'failed');
});

test('--post-hooks naming a regular file: -f refuses it before anything is downloaded or swapped (exit 2), as check-config does', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const notADirectory = join(s.root, 'post-update.sh');
  await writeFile(notADirectory, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  const args = s.sandbox.args(s.remote).map((argument) => (argument === s.sandbox.postHooks ? notADirectory : argument));
  const requests = s.server.requests.length;
  const result = await runCli(args);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /the hook directory .*post-update\.sh is a file, not a directory/);
  assert.equal(s.server.requests.length, requests, 'nothing was downloaded');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const check = await runCli(['check-config', ...args.filter((argument) => argument !== '-f')]);
  assert.equal(check.code, 2, check.stderr);
});

test('a hook that is not executable: -f and check-config refuse it with the fix (chmod +x, or NAME.disabled); nothing is deployed', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const gate = join(s.sandbox.preHooks, '20-gate');
  await writeFile(gate, '#!/bin/sh\nexit 1\n');
  await chmod(gate, 0o644);
  const result = await s.once();
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /the hook .*20-gate is not executable, so it would never run.*chmod \+x .*20-gate to run it, or rename it to 20-gate\.disabled/s);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  const check = await runCli(['check-config', ...s.sandbox.args(s.remote).filter((argument) => argument !== '-f')]);
  assert.equal(check.code, 2, check.stderr);
  assert.match(check.stderr, /20-gate is not executable/);
});
