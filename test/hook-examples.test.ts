// The example hooks in hooks.d-examples/available work as they are: each run as the agent runs
// it (the real script, the agent's environment). Rolling updates are the agent's own now (see
// fleet.test.ts), so no example hook does them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeSandbox, runCli, writeHook } from './helpers/cli.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

const examples = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'hooks.d-examples', 'available');

interface HookRun {
  code: number | null;
  output: string;
}

/** Runs an example hook with the variables the agent gives it. */
function runHook(name: string, env: NodeJS.ProcessEnv): Promise<HookRun> {
  return new Promise((resolvePromise) => {
    execFile(join(examples, name), [], { env: { PATH: process.env.PATH, ...env } }, (error, stdout, stderr) => {
      resolvePromise({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr });
    });
  });
}

async function captureServer(t: TestContext, status: () => number) {
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      bodies.push(body);
      response.writeHead(status()).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  t.after(() => new Promise((done) => server.close(done)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies };
}

test('reload-systemd-service reloads the service in post-update and revert, and its failure fails the hook', async (t) => {
  const root = await temporaryDirectory(t);
  const calls = join(root, 'calls');
  await writeHook(join(root, 'bin'), 'systemctl', `echo "$@" >> ${calls}\n[ -f ${root}/fail ] && exit 1\nexit 0`);
  const env = { PATH: `${join(root, 'bin')}:${process.env.PATH}`, SERVICE: 'shop.service', CURRENT_CONFIG: '/r/new' };
  assert.equal((await runHook('reload-systemd-service', { ...env, REPO_DEPLOY_PHASE: 'post-update' })).code, 0);
  assert.equal((await runHook('reload-systemd-service', { ...env, REPO_DEPLOY_PHASE: 'revert' })).code, 0);
  assert.equal((await runHook('reload-systemd-service', { ...env, REPO_DEPLOY_PHASE: 'pre-update' })).code, 0);
  assert.equal(await readFile(calls, 'utf8'), 'reload-or-restart shop.service\nreload-or-restart shop.service\n');
  await writeFile(join(root, 'fail'), '');
  assert.notEqual((await runHook('reload-systemd-service', { ...env, REPO_DEPLOY_PHASE: 'post-update' })).code, 0);
});

test('migrate-when-changed migrates on a first deploy and when the folder changed, never otherwise', async (t) => {
  const root = await temporaryDirectory(t);
  const release = async (name: string, migration: string) => {
    const path = join(root, name);
    await mkdir(join(path, 'migrations'), { recursive: true });
    await writeFile(join(path, 'migrations', '001.sql'), migration);
    return path;
  };
  const v1 = await release('v1', 'create table a;');
  const v2 = await release('v2', 'create table a;');
  const v3 = await release('v3', 'create table a; create table b;');
  const log = join(root, 'migrated');
  const env = { MIGRATE_COMMAND: `pwd >> ${log}`, REPO_DEPLOY_PHASE: 'pre-update' };
  assert.equal((await runHook('migrate-when-changed', { ...env, CURRENT_CONFIG: v1, PREVIOUS_CONFIG: '' })).code, 0);
  const unchanged = await runHook('migrate-when-changed', { ...env, CURRENT_CONFIG: v2, PREVIOUS_CONFIG: v1 });
  assert.match(unchanged.output, /migrations unchanged; no migration/);
  assert.equal((await runHook('migrate-when-changed', { ...env, CURRENT_CONFIG: v3, PREVIOUS_CONFIG: v2 })).code, 0);
  assert.equal(await readFile(log, 'utf8'), `${v1}\n${v3}\n`);
  const failing = await runHook('migrate-when-changed', { ...env, MIGRATE_COMMAND: 'exit 4', CURRENT_CONFIG: v3, PREVIOUS_CONFIG: v2 });
  assert.equal(failing.code, 4, 'a failing migration blocks the update');
});

test('wait-for-health passes once the URL is healthy and fails (so the agent reverts) when it stays unhealthy', async (t) => {
  let status = 503;
  const server = await captureServer(t, () => status);
  const env = { HEALTH_URL: server.url, HEALTH_TIMEOUT: '2', HEALTH_INTERVAL: '0.2', REPO_DEPLOY_PHASE: 'post-update' };
  const unhealthy = await runHook('wait-for-health', env);
  assert.equal(unhealthy.code, 1);
  assert.match(unhealthy.output, /unhealthy: .* answered 503 for 2s/);
  assert.equal((await runHook('wait-for-health', { ...env, REPO_DEPLOY_PHASE: 'revert' })).code, 0, 'never fails a revert');
  setTimeout(() => (status = 200), 500);
  const healthy = await runHook('wait-for-health', env);
  assert.equal(healthy.code, 0, healthy.output);
  assert.match(healthy.output, /healthy: .* answered 200/);
});

test('notify-webhook posts what was deployed, and a dead webhook never fails the deploy', async (t) => {
  const server = await captureServer(t, () => 204);
  const env = { WEBHOOK_URL: server.url, REPO_DEPLOY_PHASE: 'post-update', CURRENT_CONFIG: '/srv/releases/b', PREVIOUS_CONFIG: '/srv/releases/a', REPO_DEPLOY_REVISION: 'rev-b', REPO_DEPLOY_PREVIOUS_REVISION: 'rev-a' };
  assert.equal((await runHook('notify-webhook', env)).code, 0);
  const body = JSON.parse(server.bodies[0] ?? '{}');
  assert.deepEqual([body.phase, body.current, body.previous, body.revision, body.previous_revision], ['post-update', '/srv/releases/b', '/srv/releases/a', 'rev-b', 'rev-a']);
  const dead = await runHook('notify-webhook', { ...env, WEBHOOK_URL: 'http://127.0.0.1:1/hook' });
  assert.equal(dead.code, 0);
  assert.match(dead.output, /could not notify the webhook \(ignored\)/);
});

test('block-during-maintenance blocks updates (through the agent, exit 4) while the file exists', async (t) => {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root);
  await mkdir(sandbox.preHooks, { recursive: true });
  await copyFile(join(examples, 'block-during-maintenance'), join(sandbox.preHooks, '05-maintenance'));
  await chmod(join(sandbox.preHooks, '05-maintenance'), 0o755);
  const archive = await zipTree({ 'index.html': 'v1\n' }, join(root, 'app.zip'), root);
  const maintenance = join(root, 'maintenance');
  await writeFile(maintenance, 'database upgrade until 14:00\n');
  const blocked = await runCli(sandbox.args(archive), { MAINTENANCE_FILE: maintenance });
  assert.equal(blocked.code, 4);
  assert.match(blocked.stderr, /updates are on hold: .*maintenance exists/);
  assert.match(blocked.stderr, /reason: database upgrade until 14:00/);
  const { rm } = await import('node:fs/promises');
  await rm(maintenance);
  assert.equal((await runCli(sandbox.args(archive), { MAINTENANCE_FILE: maintenance })).code, 0);
});
