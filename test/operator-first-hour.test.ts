// An operator's first hour (issue 23): commands that must not do the wrong thing, and mistakes
// that must end in one line naming the fix and the documented exit code, never a stack trace.
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { cliPath, runCli } from './helpers/cli.js';
import { resolveRevision } from '../src/operator/revision-prefix.js';
import { temporaryDirectory } from './helpers/temp.js';
import { setup } from './helpers/zip-agent.js';

const execFileAsync = promisify(execFile);

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
  // check-config judges by the check's own code path: held back, not "would be deployed".
  const stateBefore = await readFile(join(s.sandbox.cache, 'state.json'), 'utf8');
  const check = await runCli(['check-config', '-r', s.remote, ...common]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /^ok +found: the remote is reachable; its revision [0-9a-f]{12} is held back after repeated failures/m);
  assert.equal(await readFile(join(s.sandbox.cache, 'state.json'), 'utf8'), stateBefore, 'check-config changes no state');
  // "failed since" is when the trouble began: the first of the failures, not the last.
  const heldLine = /^held back: +[0-9a-f]{12} \(failed 2 times since (\S+); last at (\S+): post-update hook 10-record failed with exit code 1\); "repo-deploy retry" tries it again$/m.exec((await runCli(['status', ...common])).stdout);
  assert.ok(heldLine, 'status shows the held-back revision with its failures');
  assert.ok(heldLine[1]! < heldLine[2]!, `first failure ${heldLine[1]} before the last ${heldLine[2]}`);

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
  assert.match(check.stdout, /^FAILED +pre-update hooks: .*20-gate is not executable/m);
});

test('status and releases piped into a reader that has gone (| head -1): output ends quietly, no EPIPE and no stack trace', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config];
  for (const command of ['status', 'releases']) {
    for (let round = 0; round < 3; round++) {
      // `true` exits without reading: every write of the agent meets a closed pipe.
      const { stdout, stderr } = await execFileAsync('bash', ['-c', `"$0" "$@" | true; echo "agent exit \${PIPESTATUS[0]}"`, process.execPath, cliPath, command, ...common]);
      assert.equal(stdout.trim(), 'agent exit 0', stderr);
      assert.doesNotMatch(stderr, /EPIPE|Error|at /, stderr);
    }
  }
});

test('http-listen on a port another process holds: exit 2 naming the setting and how to find the holder; the unit does not restart on exit 2', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const port = (holder.address() as AddressInfo).port;
  const s = await setup(t, `http-listen = 127.0.0.1:${port}\n`);
  await s.publish('1');
  const result = await runCli(s.daemonArgs());
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, new RegExp(`http-listen = 127\\.0\\.0\\.1:${port}: the port is already in use by another process; choose another port`));
  assert.doesNotMatch(result.stderr, /EADDRINUSE|internal error|\n\s+at /);
  const unit = await readFile(join(import.meta.dirname, '..', 'etc', 'repo-deploy.service'), 'utf8');
  assert.match(unit, /^RestartPreventExitStatus=2$/m);
});

test('webhook-secret = short: the refusal keeps its own words ("is too short"), masking only values', async (t) => {
  const s = await setup(t, 'http-listen = 127.0.0.1:0\nwebhook-secret = short\n');
  const result = await runCli(['check-config', ...s.sandbox.args(s.remote).filter((argument) => argument !== '-f')]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /webhook-secret is too short: a shared secret needs at least 16 characters/);
  assert.doesNotMatch(result.stderr, /\*\*\*/);
});

test('small words: a one-file release says "extracted 1 file", not "1 files"', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /extracted 1 file, 0 directories, 0 symlinks \(10 bytes\)/);
});

/** The CLI as the unprivileged user `nobody` (the tests run as root). */
function runCliAsNobody(args: string[]) {
  return execFileAsync('runuser', ['-u', 'nobody', '--', process.execPath, cliPath, ...args], { env: { PATH: process.env.PATH } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

test('a user who cannot write the cache or the live path: one line naming the path, its owner and the way out, exit 2; the live release stays', async (t) => {
  const s = await setup(t);
  await chmod(s.root, 0o755); // nobody may look in, as on a real server; the cache and live files stay root's
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await s.publish('2');
  const args = s.sandbox.args(s.remote);
  for (const command of [args, ['status', ...args.filter((argument) => argument !== '-f')]]) {
    const result = await runCliAsNobody(command);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /^repo-deploy: permission denied: repo-deploy runs as nobody and cannot open \S+ \(owned by root, mode 600\); run it as root, who owns \S+, or set cache and local to paths nobody can write$/m);
    assert.doesNotMatch(result.stderr, /EACCES|at .*\.js:\d+/);
  }
  const freshCache = await runCliAsNobody(args.map((argument) => (argument === s.sandbox.cache ? join(s.root, 'cache-not-made') : argument)));
  assert.equal(freshCache.code, 2, freshCache.stderr);
  assert.match(freshCache.stderr, /cannot create \S+cache-not-made: \S+ is owned by root, mode 755/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('npm run demo run twice: the second run updates from build 1 to build 2 and keeps the old release', async (t) => {
  const demo = await temporaryDirectory(t);
  const run = () => execFileAsync(process.execPath, [join(cliPath, '..', '..', 'scripts', 'demo.mjs')], { env: { PATH: process.env.PATH, DEMO_DIR: demo } });
  const first = await run();
  assert.match(first.stdout, /First run: build 1/);
  assert.match(first.stdout, /current -> releases\/\S+ {2}\(build 1\)/);
  const second = await run();
  assert.match(second.stdout, /Build 2 is published: the agent stages it as a new release and updates from build 1/);
  assert.match(second.stderr, /deployed revision [0-9a-f]{12} as release \S+ \(was release \S+, revision [0-9a-f]{12}, kept for a rollback\)/);
  assert.match(second.stderr, /\[50-announce\] now serving \S+ \(was: \S+releases\/\S+\)/);
  assert.match(second.stdout, /current -> releases\/\S+ {2}\(build 2\)/);
  assert.equal((await readdir(join(demo, 'www', 'releases'))).filter((name) => !name.startsWith('.')).length, 2);
});

test('a revision named by the 12 characters log lines show: rollback takes it (or a release id prefix); an ambiguous or too short one is named, exit 2', async (t) => {
  const s = await setup(t);
  const common = ['--cache', s.sandbox.cache, '-l', s.sandbox.live, '-c', s.sandbox.config, '--pre-hooks', s.sandbox.preHooks, '--post-hooks', s.sandbox.postHooks];
  await s.publish('1');
  const first = await s.once();
  const revision = /deployed revision ([0-9a-f]{12})/.exec(first.stderr)?.[1];
  assert.ok(revision, first.stderr);
  await s.publish('2');
  assert.equal((await s.once()).code, 0);
  await s.publish('3');
  assert.equal((await s.once()).code, 0);

  const byRevision = await runCli(['rollback', revision, ...common]);
  assert.equal(byRevision.code, 0, byRevision.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  const releases = JSON.parse((await runCli(['releases', '--json', ...common])).stdout) as Array<{ id: string }>;
  const tooShort = await runCli(['rollback', 'zz', ...common]);
  assert.equal(tooShort.code, 2);
  assert.match(tooShort.stderr, /revision "zz" is too short to name one; give at least 4/);
  const ambiguous = await runCli(['rollback', releases[0]!.id.slice(0, 4), ...common]);
  assert.equal(ambiguous.code, 2);
  assert.match(ambiguous.stderr, /names 3 releases \(.*\); give the whole release id/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('resolveRevision: a whole revision, a prefix with or without sha256:, none, and an ambiguous prefix listing what it matches', () => {
  const known = ['sha256:e30f016b1a4a0000', 'sha256:e30f99990000', '4b825dc642cb6eb9a060e54bf8d69288fbee4904'];
  assert.equal(resolveRevision('sha256:e30f016b1a4a0000', known), 'sha256:e30f016b1a4a0000');
  assert.equal(resolveRevision('e30f016b1a4a', known), 'sha256:e30f016b1a4a0000');
  assert.equal(resolveRevision('sha256:e30f01', known), 'sha256:e30f016b1a4a0000');
  assert.equal(resolveRevision('4B825DC6', known), '4b825dc642cb6eb9a060e54bf8d69288fbee4904');
  assert.equal(resolveRevision('deadbeef', known), undefined);
  assert.throws(() => resolveRevision('e30f', known), /revision "e30f" is ambiguous: it begins 2 revisions \(e30f016b1a4a, e30f99990000\); give more of its characters/);
});

test('check-config with three mistakes (a bad schedule, a missing hook directory, an unreachable remote): each is a FAILED line, every other part is still checked, exit 2 at the end', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  await writeFile(s.sandbox.config, 'schedule = 61 * * * *\n');
  s.server.route('/app.zip', { kind: 'status', status: 503 });
  const args = s.sandbox.args(s.remote).filter((argument) => argument !== '-f').map((argument) => (argument === s.sandbox.postHooks ? join(s.root, 'no-such-hooks') : argument));
  const check = await runCli(['check-config', ...args]);
  assert.equal(check.code, 2, check.stderr);
  assert.match(check.stdout, /^FAILED +schedule: schedule "61 \* \* \* \*" is not a valid cron expression/m);
  assert.match(check.stdout, /^FAILED +post-update hooks: .*the post-hooks directory \S+no-such-hooks does not exist; create it/m);
  assert.match(check.stdout, /^FAILED +found: cannot download .*503$/m);
  assert.doesNotMatch(check.stdout, /next check|no update starts/, 'check-config is not a check: it speaks of no next one');
  for (const part of ['config', 'remote', 'live', 'cache', 'pre-update hooks', 'deploy window', 'paused', 'fleet']) assert.match(check.stdout, new RegExp(`^ok +${part}: `, 'm'));
  assert.match(check.stderr, /^repo-deploy: check-config: 3 parts failed \(schedule, post-update hooks, found\); each FAILED line above says why and what to do$/m);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('check-config while paused says the new revision waits for the pause, as the next check would, and deploys nothing', async (t) => {
  const s = await setup(t);
  const common = s.daemonArgs();
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  assert.equal((await runCli(['pause', '--reason', 'incident 4711', ...common])).code, 0);
  await s.publish('2');
  const check = await runCli(['check-config', ...common]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /^ok +found: the remote is reachable; revision [0-9a-f]{12} is not deployed yet: it waits: the agent is paused since \S+ by \S+: incident 4711/m);
  assert.doesNotMatch(check.stdout, /would be deployed/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('https:// to a server that speaks plain HTTP: one log line naming the failed TLS handshake (no OpenSSL dump across lines), exit 3, the live release stays', async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const result = await runCli(s.sandbox.args(s.remote.replace(/^http:/, 'https:')));
  assert.equal(result.code, 3, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.ok(lines.every((line) => /^\d{4}-\d\d-\d\dT\S+Z (INFO|WARN|ERROR|DEBUG) /.test(line)), result.stderr);
  assert.match(result.stderr, /ERROR cannot download https:\/\/127\.0\.0\.1:\d+\/app\.zip: the TLS handshake failed: wrong version number \(ERR_SSL_WRONG_VERSION_NUMBER\); the server may not speak TLS on this port \(plain http:\/\/\?\); the live release is unchanged/);
  assert.doesNotMatch(result.stderr, /SSL routines|\.c:\d+/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('typos: a flag (--pre-hook), a command (statsu) and a config key (shedule) each get one line with the closest fix and exit 2; one far from everything gets none', async (t) => {
  const flag = await runCli(['-f', '--pre-hook', '/tmp']);
  assert.equal(flag.code, 2, flag.stderr);
  assert.equal(flag.stderr, 'repo-deploy: unknown option --pre-hook; did you mean --pre-hooks?; see repo-deploy --help\n');
  const command = await runCli(['statsu']);
  assert.equal(command.code, 2, command.stderr);
  assert.equal(command.stderr, 'repo-deploy: unknown command "statsu"; did you mean "status"?; see repo-deploy --help\n');
  const far = await runCli(['-f', '--zzzzqq']);
  assert.equal(far.code, 2, far.stderr);
  assert.equal(far.stderr, 'repo-deploy: unknown option --zzzzqq; see repo-deploy --help\n');

  const directory = await temporaryDirectory(t);
  const config = join(directory, 'agent.cfg');
  await writeFile(config, 'remote = /tmp/app.zip\nshedule = * * * * *\n');
  const key = await runCli(['check-config', '-c', config]);
  assert.equal(key.code, 2, key.stderr);
  assert.match(key.stderr, /^repo-deploy: \S+agent\.cfg:2: unknown key "shedule"; did you mean "schedule"\?\n$/);
  await writeFile(config, 'remote = /tmp/app.zip\nzzzzqq = 1\n');
  const none = await runCli(['check-config', '-c', config]);
  assert.match(none.stderr, /unknown key "zzzzqq"; the README \("Config file"\) and etc\/repo-deploy\.cfg list every key\n$/);
  assert.ok(none.stderr.length < 300, 'not every key on one line');
});

test('a command\'s --help lists only what applies to it: rollback --help has no -f or --ignore-window; the agent\'s own --help has them', async () => {
  const rollback = await runCli(['rollback', '--help']);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.match(rollback.stdout, /--force/);
  assert.match(rollback.stdout, /-c, --config/);
  assert.doesNotMatch(rollback.stdout, /--fetch|--ignore-window/);
  const agent = await runCli(['--help']);
  assert.match(agent.stdout, /-f, --fetch/);
  assert.match(agent.stdout, /--ignore-window/);
});
