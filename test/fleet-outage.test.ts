// Fleet rollouts when the operator or Redis stops them: fleet halt, Redis stopped mid-rollout and
// restarted empty, a Redis that cannot be reached. Split from fleet.test.ts, which it shares its
// helpers with (helpers/fleet-daemons.ts), to keep each file inside the runner's timeout.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSandbox, runCli } from './helpers/cli.js';
import { startHttpServer } from './helpers/http-server.js';
import { freePort } from './helpers/git-servers.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';
import { fleet, stopAll } from './helpers/fleet-daemons.js';

test('fleet halt stops a rollout before the next server starts, and the swap of the one in its pre-update hooks; resume lets it finish', async (t) => {
  // The first server to start version 2 waits in its pre-update hook until the test has halted
  // the fleet, so the halt lands while that update runs, however slow the machine.
  const f = await fleet(t, 3, 'max-parallel = 1\n', 'if grep -q "version 2" "$CURRENT_CONFIG/index.html"; then while [ ! -e $FLEET/go ]; do sleep 0.05; done; fi');
  const startsBefore = await f.allOnVersion1();
  await f.publish('2');
  await f.nextStart(startsBefore);
  const halt = await f.command('fleet', 'halt', '--reason', 'errors in the logs');
  assert.equal(halt.code, 0, halt.stderr);
  // Each server but the one updating has since been told the fleet is halted; that one, past its
  // pre-update hooks, finds the halt just before its swap and abandons the update.
  const started = (await f.starts()).at(-1)?.split(' ')[1];
  for (const member of f.members.filter((candidate) => candidate.host !== started)) await member.agent?.waitFor(/the fleet is halted since .*: errors in the logs/, 30_000);
  await writeFile(join(f.root, 'go'), '');
  const updating = f.members.find((candidate) => candidate.host === started)!;
  await updating.agent?.waitFor(/the fleet was halted by \S+: errors in the logs; the update was abandoned before the swap/, 30_000);
  assert.equal(await f.liveVersion(updating), '1', 'the halted revision was not swapped in');
  // The slot is free now: wait until every other server has checked again since, then count.
  const freedAt = new Date().toISOString();
  for (;;) {
    const report = JSON.parse((await f.command('fleet', 'status', '--json')).stdout || '{}') as { members?: Array<{ host: string; seen: string }> };
    const others = (report.members ?? []).filter((member) => member.host !== started);
    if (others.length === 2 && others.every((member) => member.seen > freedAt)) break;
    await sleep(200);
  }
  assert.equal((await f.starts()).length - startsBefore, 1, 'no other server started after the halt');
  const status = await f.command('fleet', 'status');
  assert.match(status.stdout, /halted: +yes, since \S+ by \S+: errors in the logs/);
  assert.equal((await f.command('fleet', 'resume')).code, 0);
  await f.waitForVersion('2');
  await stopAll(f);
  const check = await runCli(['check-config', ...f.members[0]!.args]);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /fleet: +web on redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 \(reachable\) as server-0; max-parallel 1, canary 0, max-failed-hosts 1/);
  assert.ok(!check.stdout.includes(f.redis.password));
});

test('Redis stopped mid-rollout and restarted empty: no update starts without it, nor after it comes back without its records, until fleet init; nothing is left half-way, the rollout finishes, the password shows nowhere', async (t) => {
  const f = await fleet(t, 3, 'max-parallel = 1\nretry-backoff = 1\nmax-backoff = 2\n', 'sleep 1');
  const startsBefore = await f.allOnVersion1();
  await f.publish('2');
  await f.nextStart(startsBefore);
  await f.redis.stop();
  const unreachable = /the fleet's Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 cannot be reached/;
  for (const member of f.members) await member.agent?.waitFor(unreachable, 30_000);
  const startsWhileDown = (await f.starts()).length;
  // Every server checks (and fails) once more with the fleet down: none starts an update.
  for (const member of f.members) await member.agent?.waitFor(unreachable, 30_000, member.agent.lines.length);
  assert.equal((await f.starts()).length, startsWhileDown, 'no update started while the fleet was unreachable');
  await f.redis.start();
  // The test's Redis keeps nothing: every server notices its records are gone and still starts nothing.
  const lost = /the fleet's Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 has lost fleet \S+'s records/;
  for (const member of f.members) await member.agent?.waitFor(lost, 30_000);
  assert.equal((await f.starts()).length, startsWhileDown, 'no update started while the fleet\'s records were lost');
  assert.equal((await f.command('fleet', 'init')).code, 0);
  await f.waitForVersion('2');
  const output = await stopAll(f);
  assert.ok(!output.includes(f.redis.password), 'the Redis password is in no output');
  for (const member of f.members) {
    const state = JSON.parse(await readFile(join(member.sandbox.cache, 'state.json'), 'utf8'));
    assert.equal(state.inProgress, undefined, `${member.host} is not half-way`);
  }
  const statusOutput = await f.command('fleet', 'status');
  assert.ok(!statusOutput.stdout.includes(f.redis.password) && !statusOutput.stderr.includes(f.redis.password));
});

test('a fleet whose Redis cannot be reached: -f fails closed (exit 3, nothing deployed, the address without its password); fleet-fail-open = yes deploys', async (t) => {
  const root = await temporaryDirectory(t);
  const origin = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  origin.route('/app.zip', { kind: 'file', path: archive });
  await zipTree({ 'index.html': 'version 1\n' }, archive, root);
  const closed = `redis://:closed-port-secret-42@127.0.0.1:${await freePort()}/0`;
  const sandbox = await makeSandbox(root, `fleet-redis = ${closed}\nfleet-name = web\n`);
  const failed = await runCli(sandbox.args(origin.url('/app.zip')));
  assert.equal(failed.code, 3, failed.stderr);
  assert.match(failed.stderr, /the fleet's Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 cannot be reached \(.*\); no update starts/);
  assert.ok(!failed.stderr.includes('closed-port-secret-42'));
  await assert.rejects(sandbox.liveFile('index.html'), /ENOENT/, 'nothing was deployed');
  // check-config goes on past the unreachable Redis: every other part is checked and reported.
  const check = await runCli(['check-config', ...sandbox.args(origin.url('/app.zip')).filter((argument) => argument !== '-f')]);
  assert.equal(check.code, 3, check.stderr);
  assert.match(check.stdout, /^FAILED +fleet: the fleet's Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 cannot be reached .*; start it, or check fleet-redis/m);
  assert.doesNotMatch(check.stdout, /no update starts|the live release is unchanged/);
  assert.match(check.stdout, /^ok +found: the remote is reachable; revision [0-9a-f]{12} \(.*\) would be deployed at the next check$/m);
  assert.match(check.stderr, /check-config: 1 part failed \(fleet\)/);
  assert.ok(!(check.stdout + check.stderr).includes('closed-port-secret-42'));

  await writeFile(sandbox.config, `fleet-redis = ${closed}\nfleet-name = web\nfleet-fail-open = yes\n`);
  const open = await runCli(sandbox.args(origin.url('/app.zip')));
  assert.equal(open.code, 0, open.stderr);
  assert.match(open.stderr, /fleet-fail-open = yes: this check goes on without the fleet/);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  assert.ok(!open.stderr.includes('closed-port-secret-42'));
});
