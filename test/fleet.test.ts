// Fleet rollouts against a real redis-server on a loopback port, with real agents as separate
// processes (each with its own cache and live directory) and one HTTP origin. A pre-update hook
// and the health check write when each server's update starts and when its gate runs, so the
// tests can prove how many servers were updating at once.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fleet, stopAll, type Member } from './helpers/fleet-daemons.js';

test('10 servers, max-parallel = 2: never more than 2 between pre-update and the end of the gate, and all end on the new revision', async (t) => {
  const f = await fleet(t, 10, 'max-parallel = 2\n', 'sleep 0.3');
  await f.allOnVersion1();
  await f.publish('2');
  await f.waitForVersion('2');
  const output = await stopAll(f);
  const most = await f.mostAtOnce();
  assert.ok(most <= 2, `at most 2 at once, saw ${most}`);
  assert.ok((await f.starts()).length >= 20, 'each server started an update for each revision');
  assert.ok(!output.includes(f.redis.password), 'the Redis password is in no output');
});

test('canary = 1 and a gate that fails on the canary: no other server downloads it, all keep the old release, fleet status says halted; a fixed revision rolls on', async (t) => {
  const f = await fleet(t, 4, 'max-parallel = 2\ncanary = 1\n');
  const startsBefore = await f.allOnVersion1();
  const downloadsBefore = f.downloads();
  await f.publish('2', { broken: 'yes\n' });
  // Wait until the revision is halted and every server has said it holds it back.
  for (;;) {
    const status = await f.command('fleet', 'status', '--json');
    const report = JSON.parse(status.stdout || '{}');
    if (report.progress?.halted && f.members.every((member) => member.agent?.lines.some((line) => /is halted for the fleet: the canary failed/.test(line)))) break;
    await sleep(200);
  }
  // The scout downloads a zip to learn its revision (its sha256); when another member wins the
  // canary slot between the scout's publish and its own begin, that one downloads it too. No third.
  assert.ok(f.downloads() - downloadsBefore <= 2, `only the scout and the canary downloaded the revision (${f.downloads() - downloadsBefore} downloads)`);
  assert.equal((await f.starts()).length - startsBefore, 1, 'only the canary started an update');
  for (const member of f.members) assert.equal(await f.liveVersion(member), '1');
  const status = await f.command('fleet', 'status');
  assert.match(status.stdout, /HALTED for the fleet: the canary failed; last on server-\d: the health check failed/);
  assert.match(status.stdout, /failed on server-\d: /);
  // The canary's own words agree with the halt that follows: no "the next check tries again".
  const canaryLines = f.members.flatMap((member) => member.agent?.lines ?? []).filter((line) => / ERROR update to \S+ reverted: /.test(line));
  assert.equal(canaryLines.length, 1, canaryLines.join('\n'));
  assert.match(canaryLines[0]!, /in a fleet this server does not try it again, and the fleet is told/);
  assert.doesNotMatch(canaryLines[0]!, /the next check tries again/);

  const halted = /HALTED for the fleet: .*"repo-deploy fleet resume (\S+)"/.exec(status.stdout)?.[1] ?? '';

  await f.publish('3');
  const resume = await f.command('fleet', 'resume');
  assert.equal(resume.code, 0, resume.stderr);
  await f.waitForVersion('3');
  await stopAll(f);
  // The halted revision, named by the 12 characters log lines show (a halt outlives the rollout).
  const byPrefix = await f.command('fleet', 'resume', halted.replace(/^sha256:/, '').slice(0, 12));
  assert.equal(byPrefix.code, 0, byPrefix.stderr);
  assert.match(byPrefix.stdout, new RegExp(`revision ${halted.replace(/^sha256:/, '').slice(0, 12)} may roll out again`));
});

test('max-failed-hosts = 2: after two servers fail a revision, the rest never start it', async (t) => {
  const f = await fleet(t, 4, 'max-parallel = 1\nmax-failed-hosts = 2\n');
  const startsBefore = await f.allOnVersion1();
  await f.publish('2', { broken: 'yes\n' });
  for (;;) {
    const report = JSON.parse((await f.command('fleet', 'status', '--json')).stdout || '{}');
    if (report.progress?.halted && f.members.every((member) => member.agent?.lines.some((line) => /is halted for the fleet: 2 servers failed it/.test(line)))) break;
    await sleep(200);
  }
  assert.equal((await f.starts()).length - startsBefore, 2, 'two servers started it and failed; the other two never started');
  for (const member of f.members) assert.equal(await f.liveVersion(member), '1');
  await stopAll(f);
});

test('kill -9 of a server holding the slot: the slot frees itself within fleet-lease and the rollout finishes', async (t) => {
  // The first server to start the update to version 2 (mkdir is atomic) hangs in its pre-update hook.
  const f = await fleet(t, 3, 'max-parallel = 1\nfleet-lease = 3\n', '[ -e "$CURRENT_CONFIG/HANG" ] && mkdir $FLEET/claimed 2>/dev/null && { echo $$ > $SANDBOX/hung; sleep 300; }; true');
  await f.allOnVersion1();
  await f.publish('2', { HANG: 'the first server to start this update hangs in its pre-update hook\n' });
  let hung: Member | undefined;
  let hookGroup = 0;
  while (!hung) {
    for (const member of f.members) {
      const pid = await readFile(join(member.sandbox.root, 'hung'), 'utf8').then(Number, () => 0);
      if (pid) [hung, hookGroup] = [member, pid];
    }
    await sleep(100);
  }
  t.after(() => {
    try {
      process.kill(-hookGroup, 'SIGKILL'); // the hook's process group, which the killed agent left behind
    } catch {
      // already gone
    }
  });
  hung.agent?.child.kill('SIGKILL');
  await hung.agent?.done;
  const others = f.members.filter((member) => member !== hung);
  await f.waitForVersion('2', others);
  assert.equal(await f.liveVersion(hung), '1', 'the killed server never swapped');
  await stopAll(f);
});
