import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HookFailedError, listHooks, runHooks, type RunHooksOptions } from '../src/release/hooks.js';
import { createLogger } from '../src/base/log.js';
import { writeHook } from './helpers/cli.js';
import { temporaryDirectory } from './helpers/temp.js';

function options(directory: string, lines: string[], overrides: Partial<RunHooksOptions> = {}): RunHooksOptions {
  return {
    directory,
    phase: 'post-update',
    hookEnvironment: { currentConfig: '/r/new', previousConfig: '/r/old', revision: 'rev-new', previousRevision: 'rev-old' },
    baseEnv: { PATH: process.env.PATH, AGENT_VARIABLE: 'kept' },
    timeoutMs: 10_000,
    log: createLogger({ verbose: true, write: (line) => lines.push(line) }),
    failureKind: 'post-hook',
    ...overrides,
  };
}

/** Alive and not a zombie (an orphan's zombie may linger where PID 1 does not reap it). */
const processIsAlive = async (pid: number) => {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

test('hooks run in byte order of their names; dot files, backups, directories and non-executables are skipped', async (t) => {
  const directory = await temporaryDirectory(t);
  const order = join(directory, '..', `order-${Date.now()}`);
  t.after(() => import('node:fs/promises').then(({ rm }) => rm(order, { force: true })));
  for (const name of ['20-b', '10-a', 'Z-upper', 'a-lower', '.hidden', '30-c~']) await writeHook(directory, name, `echo ${name} >> ${order}`);
  await writeFile(join(directory, '15-not-executable'), `#!/bin/sh\necho no >> ${order}\n`);
  await mkdir(join(directory, '12-a-directory'));
  const lines: string[] = [];
  assert.deepEqual(await listHooks(directory), ['10-a', '20-b', 'Z-upper', 'a-lower']);
  await runHooks(options(directory, lines));
  assert.equal(await readFile(order, 'utf8'), '10-a\n20-b\nZ-upper\na-lower\n');
  // Skipped while running, loudly (at start and in check-config it is refused: operator-first-hour.test.ts).
  assert.ok(lines.some((line) => /ERROR.*15-not-executable is not executable and does NOT run/.test(line)), lines.join('\n'));
});

test('a missing hook directory means no hooks', async () => {
  await runHooks(options('/nonexistent/hooks.d', []));
});

test('hooks see the agent environment plus the five deploy variables, and their output is logged with their name', async (t) => {
  const directory = await temporaryDirectory(t);
  await writeHook(directory, '50-env', 'echo "cur=$CURRENT_CONFIG prev=$PREVIOUS_CONFIG phase=$REPO_DEPLOY_PHASE rev=$REPO_DEPLOY_REVISION prevrev=$REPO_DEPLOY_PREVIOUS_REVISION agent=$AGENT_VARIABLE"\necho oops >&2');
  const lines: string[] = [];
  await runHooks(options(directory, lines));
  assert.ok(lines.some((line) => line.includes('[50-env] cur=/r/new prev=/r/old phase=post-update rev=rev-new prevrev=rev-old agent=kept')), lines.join('\n'));
  assert.ok(lines.some((line) => /WARN.*\[50-env\] oops/.test(line)));
});

test('the first failing hook stops its phase and the error names it, its exit code and its last line', async (t) => {
  const directory = await temporaryDirectory(t);
  const marker = join(directory, '..', `ran-${Date.now()}`);
  await writeHook(directory, '10-fails', 'echo "database unreachable"\nexit 3');
  await writeHook(directory, '20-never', `touch ${marker}`);
  const error = await runHooks(options(directory, [])).catch((caught: unknown) => caught);
  assert.ok(error instanceof HookFailedError);
  assert.equal(error.message, 'post-update hook 10-fails failed with exit code 3: database unreachable');
  assert.equal(error.exitCode, 5);
  await assert.rejects(readFile(marker), /ENOENT/);
});

test('a hook that hangs past its timeout is killed with the children it started', async (t) => {
  const directory = await temporaryDirectory(t);
  const childPidFile = join(directory, '..', `child-${Date.now()}`);
  t.after(() => import('node:fs/promises').then(({ rm }) => rm(childPidFile, { force: true })));
  await writeHook(directory, '10-hangs', `sleep 300 &\necho $! > ${childPidFile}\nwait`);
  // `sleep 300` outlives the test's time limit: waiting for it would fail the test.
  const error = await runHooks(options(directory, [], { timeoutMs: 1000, killGraceMs: 500 })).catch((caught: unknown) => caught);
  assert.ok(error instanceof HookFailedError);
  assert.match(error.message, /10-hangs timed out after 1 seconds and was killed with its process group/);
  const childPid = Number(await readFile(childPidFile, 'utf8'));
  await sleep(200);
  assert.equal(await processIsAlive(childPid), false, 'the hook\'s child process ended too');
});

test('a hook killed by a signal counts as failed', async (t) => {
  const directory = await temporaryDirectory(t);
  await writeHook(directory, '10-killed', 'kill -KILL $$');
  await assert.rejects(runHooks(options(directory, [])), /10-killed was killed by signal SIGKILL/);
});

test('a hook that cannot be started (its interpreter is missing) fails with a hint', async (t) => {
  const directory = await temporaryDirectory(t);
  await writeHook(directory, '10-binary', '#!/nonexistent/interpreter\necho never');
  await assert.rejects(runHooks(options(directory, [], { failureKind: 'pre-hook', phase: 'pre-update' })), (error: unknown) => {
    assert.ok(error instanceof HookFailedError);
    assert.match(error.message, /pre-update hook 10-binary could not be started .*check its #! line/);
    assert.equal(error.exitCode, 4);
    return true;
  });
});

test('a hook that leaves a background process holding its output does not hold up the phase', async (t) => {
  const directory = await temporaryDirectory(t);
  const pidFile = join(directory, '..', `background-${Date.now()}`);
  // The background process lives longer than the test may run: waiting for it would fail the test.
  await writeHook(directory, '10-daemonises', `sleep 600 &\necho $! > ${pidFile}\necho started`);
  await runHooks(options(directory, []));
  const backgroundPid = Number(await readFile(pidFile, 'utf8'));
  assert.equal(await processIsAlive(backgroundPid), true, 'a hook that succeeded keeps what it started');
  process.kill(backgroundPid, 'SIGKILL');
  await import('node:fs/promises').then(({ rm }) => rm(pidFile, { force: true }));
});

test('leftovers of package managers and editors beside a hook never run, each logged once; names like restart.sh still run', async (t) => {
  const directory = await temporaryDirectory(t);
  const order = join(directory, '..', `order-leftovers-${Date.now()}`);
  t.after(() => import('node:fs/promises').then(({ rm }) => rm(order, { force: true })));
  const leftovers = ['50-reload.dpkg-old', '50-reload.dpkg-dist', '50-reload.dpkg-new', '50-reload.rpmsave', '50-reload.rpmnew', '50-reload.ucf-old', '50-reload.ucf-dist', '50-reload.bak', '50-reload.orig', '50-reload.swp', '#50-reload#', '50-reload.disabled'];
  for (const name of ['50-reload', 'restart.sh', ...leftovers]) await writeHook(directory, name, `echo ${name} >> ${order}`);
  const lines: string[] = [];
  assert.deepEqual(await listHooks(directory), ['50-reload', 'restart.sh']);
  await runHooks(options(directory, lines));
  await runHooks(options(directory, lines));
  assert.equal(await readFile(order, 'utf8'), '50-reload\nrestart.sh\n50-reload\nrestart.sh\n');
  for (const name of leftovers) {
    const said = lines.filter((line) => line.includes(`${name} is skipped`));
    assert.equal(said.length, 1, `${name} is logged once: ${said.join('\n')}`);
    assert.match(said[0] ?? '', /INFO/);
  }
});

test('hooks never inherit the agent\'s REPO_DEPLOY_* settings or AWS credentials; the documented variables are there', async (t) => {
  const directory = await temporaryDirectory(t);
  const dump = join(directory, '..', `environ-${Date.now()}`);
  t.after(() => import('node:fs/promises').then(({ rm }) => rm(dump, { force: true })));
  // What the kernel shows of the hook's environment, as another process would read it.
  await writeHook(directory, '50-dump', `tr '\\000' '\\n' < /proc/$$/environ > ${dump}`);
  const baseEnv = {
    PATH: process.env.PATH,
    REPO_DEPLOY_REMOTE: 'https://deployer:hunter2-remote@127.0.0.1/app.zip',
    REPO_DEPLOY_AWS_SECRET_KEY: 'secret-from-repo-deploy-env',
    AWS_SECRET_ACCESS_KEY: 'secret-from-aws-env',
    AWS_SESSION_TOKEN: 'session-token-from-aws-env',
    AWS_REGION: 'eu-west-1',
  };
  await runHooks(options(directory, [], { baseEnv }));
  const environ = await readFile(dump, 'utf8');
  for (const secret of ['hunter2-remote', 'secret-from-repo-deploy-env', 'secret-from-aws-env', 'session-token-from-aws-env']) {
    assert.ok(!environ.includes(secret), `${secret} reached the hook`);
  }
  for (const line of ['AWS_REGION=eu-west-1', 'CURRENT_CONFIG=/r/new', 'PREVIOUS_CONFIG=/r/old', 'REPO_DEPLOY_PHASE=post-update', 'REPO_DEPLOY_REVISION=rev-new', 'REPO_DEPLOY_PREVIOUS_REVISION=rev-old']) {
    assert.ok(environ.split('\n').includes(line), `${line} is in the hook's environment`);
  }
});
