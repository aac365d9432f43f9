// A fleet under faults (issue 29), against a real redis-server and real agents: a member whose
// clock runs ahead, a halt while a member runs its pre-update hooks, a member paused (SIGSTOP)
// past fleet-lease in its gate, two agents under one name, a scout slowed past its lease. The
// invariants: never more than max-parallel servers between their swap and their commit; a halted
// revision is swapped in by no server after the halt. More in fleet-recovery.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { clockAhead, rig, waitingHook } from './helpers/fleet-rig.js';

test('a member whose clock runs 10 minutes ahead does not expire the slot another member holds: it waits (max-parallel 1 holds)', async (t) => {
  const r = await rig(t, 'max-parallel = 1\n');
  const a = await r.member('server-a');
  const b = await r.member('server-b');
  const release = join(r.root, 'release-a');
  await writeHook(a.preHooks, '10-hold', waitingHook(release));
  await r.publish('1');
  const holder = startAgent(t, a.daemonArgs);
  await holder.waitFor(/\[10-hold\] inside, waiting/);

  const ahead = await b.once(clockAhead('+600s'));
  assert.equal(ahead.code, 0, ahead.stderr);
  assert.match(ahead.stderr, /waits for a slot of the rolling update: 1 of 1 servers are updating/);
  await assert.rejects(b.liveFile('index.html'), /ENOENT/, 'the member ahead deployed nothing while the slot was held');
  assert.deepEqual((await r.fleetStatus()).progress?.inProgress, ['server-a']);

  await writeFile(release, '');
  await holder.waitFor(/deployed revision/);
  await holder.stop();
});

test('fleet halt while a member runs its pre-update hooks: it does not swap the revision in; the update is abandoned, not counted as a failure', async (t) => {
  const r = await rig(t, 'max-parallel = 1\n');
  const a = await r.member('server-a');
  await r.publish('1');
  assert.equal((await a.once()).code, 0);
  const release = join(r.root, 'release-a');
  await writeHook(a.preHooks, '10-hold', waitingHook(release));
  await r.publish('2');
  const run = startAgent(t, [...a.daemonArgs, '-f']);
  await run.waitFor(/\[10-hold\] inside, waiting/);
  const halt = await runCli(['fleet', 'halt', '--reason', 'errors in eu-west', '-c', a.config]);
  assert.equal(halt.code, 0, halt.stderr);
  await writeFile(release, '');
  const result = await run.done;
  assert.match(result.stderr, /the fleet was halted by \S+: errors in eu-west; the update was abandoned before the swap/);
  assert.match(result.stderr, /not counted as a failure of the revision/);
  assert.equal(await a.liveFile('index.html'), 'version 1\n', 'the halted revision was not swapped in');

  assert.equal((await runCli(['fleet', 'resume', '-c', a.config])).code, 0);
  assert.equal((await a.once()).code, 0);
  assert.equal(await a.liveFile('index.html'), 'version 2\n', 'resumed, it rolls on');
});

test('a member paused (SIGSTOP) in its gate past fleet-lease: another takes the slot; the first, resumed, takes its release back (an ERROR, not a failure of the revision) and is not counted as committed', async (t) => {
  const r = await rig(t, 'max-parallel = 1\nfleet-lease = 3\n');
  const release = join(r.root, 'release-gate');
  const a = await r.member('server-a', `health-check = sh -c 'echo "gate waiting"; while [ ! -e "${release}" ]; do sleep 0.05; done'\nhealth-timeout = 600\n`);
  const b = await r.member('server-b');
  await r.publish('1');
  const first = startAgent(t, [...a.daemonArgs, '-f']);
  await first.waitFor(/running the health check|gate waiting/);
  process.kill(first.child.pid!, 'SIGSTOP');
  try {
    // B waits for the slot until A's lease lapses on Redis's clock, then deploys and commits.
    for (;;) {
      const attempt = await b.once();
      assert.equal(attempt.code, 0, attempt.stderr);
      if (/deployed revision/.test(attempt.stderr)) break;
      assert.match(attempt.stderr, /waits for a slot of the rolling update/);
      await sleep(250);
    }
  } finally {
    process.kill(first.child.pid!, 'SIGCONT');
  }
  // B's begin removed A's lapsed slot: on waking, A asks before it commits, and takes its release back.
  await writeFile(release, '');
  const result = await first.done;
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, / ERROR release \S+ failed after it went live: this server's fleet slot lapsed before its gate ended .*; the release is taken back; going back to no release \(a first deploy\)/);
  assert.match(result.stderr, /not counted as a failure of the revision/);
  assert.equal(await a.liveTarget().catch(() => undefined), undefined, 'A is back where it was: nothing live (its first deploy)');
  assert.deepEqual((await r.fleetStatus()).progress?.committed, ['server-b']);
  // Not a failure of the revision: A deploys it at its next check, in a slot of its own.
  const again = await a.once();
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /deployed revision/);
});

test('fleet settings and commands say only true things: max-parallel = 0 is refused; resume REVISION lifts only that revision and refuses one the fleet never saw; status --json always has halt and halted', async (t) => {
  const r = await rig(t, 'max-parallel = 1\n');
  const a = await r.member('server-a');
  const zero = await a.once({ REPO_DEPLOY_MAX_PARALLEL: '0' });
  assert.equal(zero.code, 2, zero.stderr);
  assert.match(zero.stderr, /max-parallel = "0" is not at least 1/);

  const wrongPassword = await runCli(['check-config', ...a.daemonArgs], { REPO_DEPLOY_FLEET_REDIS: r.redis.url.replace(r.redis.password, 'not-the-password') });
  assert.equal(wrongPassword.code, 3, wrongPassword.stderr);
  assert.match(wrongPassword.stdout, /^FAILED +fleet: .*cannot be reached \(the password or user was refused: WRONGPASS/m);

  const empty = await r.fleetStatus();
  assert.ok('halt' in empty && empty.halt === null, JSON.stringify(empty));
  assert.equal(empty.progress, null);

  await r.publish('1');
  assert.equal((await a.once()).code, 0);
  const revision = JSON.parse((await runCli(['status', '--json', ...a.daemonArgs])).stdout).live.revision as string;
  assert.equal((await runCli(['fleet', 'halt', '--reason', 'maintenance', '-c', a.config])).code, 0);
  const named = await runCli(['fleet', 'resume', revision.replace(/^sha256:/, '').slice(0, 12), '-c', a.config]);
  assert.equal(named.code, 0, named.stderr);
  assert.match(named.stdout, /revision [0-9a-f]{12} was not halted/);
  const status = await r.fleetStatus();
  assert.equal(status.halt?.reason, 'maintenance', 'resuming a revision leaves the fleet halt in place');
  assert.equal(status.progress?.halted, null);

  const unknown = await runCli(['fleet', 'resume', 'deadbeefcafe', '-c', a.config]);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /the fleet has no record of revision "deadbeefcafe"/);
  assert.notEqual((await r.fleetStatus()).halt, null, 'still halted');
});

test('two servers under one host name (a cloned VM): the second is refused while the first is alive, deploys nothing, and fleet status shows the clash; once the first stops, the name frees itself', async (t) => {
  const r = await rig(t, 'max-parallel = 1\nfleet-lease = 3\n');
  const a = await r.member('server-a');
  const clone = await r.member('server-a', '', 'clone-of-a');
  const release = join(r.root, 'release-a');
  await writeHook(a.preHooks, '10-hold', waitingHook(release));
  await r.publish('1');
  const holder = startAgent(t, [...a.daemonArgs, '-f']);
  await holder.waitFor(/\[10-hold\] inside, waiting/);

  // Before: the clone found "its" slot held and went ahead: two servers updating under max-parallel 1.
  const refused = await clone.once();
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /another agent \(instance [0-9a-f]{8}\) is a live member of fleet web under this server's name "server-a", and this one is [0-9a-f]{8}: two servers share one host name .*set host-id to a name of its own on one of them/);
  await assert.rejects(clone.liveFile('index.html'), /ENOENT/, 'the clone deployed nothing');
  const check = await runCli(['check-config', ...clone.daemonArgs]);
  assert.equal(check.code, 2, check.stdout + check.stderr);
  assert.match(check.stdout, /^FAILED +fleet: another agent \(instance [0-9a-f]{8}\) is a live member of fleet web under this server's name "server-a"/m);
  const status = await r.fleetStatus();
  assert.equal(status.members.length, 1);
  assert.ok(status.members[0]!.clash, JSON.stringify(status.members));
  assert.notEqual(status.members[0]!.clash.instance, status.members[0]!.instance);
  const text = await runCli(['fleet', 'status', '-c', a.config]);
  assert.match(text.stdout, /CLASH: another agent \(instance [0-9a-f]{8}, at \S+\) tried to use the name server-a/);

  await writeFile(release, '');
  assert.equal((await holder.done).code, 0);
  assert.equal(await a.liveFile('index.html'), 'version 1\n');
  // A replaced server (a new cache, so a new instance) under the old name takes it over once the
  // old agent's heartbeat lapses (3 x fleet-lease on Redis's clock).
  for (;;) {
    const attempt = await clone.once();
    if (attempt.code === 0) break;
    assert.equal(attempt.code, 2, attempt.stderr);
    await sleep(500);
  }
  assert.equal(await clone.liveFile('index.html'), 'version 1\n');
});

test('a scout slowed past its lease (SIGSTOP during its download) does not set the fleet back: the revision another scout published meanwhile stands, and no server deploys the older one', async (t) => {
  const r = await rig(t, 'fleet-lease = 3\n');
  const a = await r.member('server-a');
  const b = await r.member('server-b');
  await r.publish('1');
  assert.equal((await a.once()).code, 0);
  assert.equal((await b.once()).code, 0);

  // The next download is held after its first bytes until the test lets it go.
  let letGo!: () => void;
  const released = new Promise<void>((resolve) => (letGo = resolve));
  let heldStarted!: () => void;
  const held = new Promise<void>((resolve) => (heldStarted = resolve));
  let holdNext = true;
  r.origin.route('/app.zip', {
    kind: 'custom',
    respond(_request, response) {
      const body = readFileSync(join(r.root, 'app.zip'));
      response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(body.length) });
      if (!holdNext) return void response.end(body);
      holdNext = false;
      response.write(body.subarray(0, 64));
      heldStarted();
      void released.then(() => response.end(body.subarray(64)));
    },
  });
  await r.publish('2');
  const slow = startAgent(t, [...a.daemonArgs, '-f']);
  await held;
  process.kill(slow.child.pid!, 'SIGSTOP');
  try {
    await r.publish('3');
    // B becomes the scout once A's scout lease lapses on Redis's clock, and deploys version 3.
    for (;;) {
      const attempt = await b.once();
      assert.equal(attempt.code, 0, attempt.stderr);
      if (/is new to the fleet/.test(attempt.stderr)) break;
      await sleep(250);
    }
    assert.equal(await b.liveFile('index.html'), 'version 3\n');
  } finally {
    process.kill(slow.child.pid!, 'SIGCONT');
    letGo();
  }
  const result = await slow.done;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /revision [0-9a-f]{12} was found here, but meanwhile server-b published [0-9a-f]{12} for the fleet .* is not rolled out/);
  assert.equal(await a.liveFile('index.html'), 'version 1\n', 'the slow scout did not deploy version 2');
  const liveB = JSON.parse((await runCli(['status', '--json', ...b.daemonArgs])).stdout).live.revision as string;
  assert.equal((await r.fleetStatus()).current?.revision, liveB, 'the fleet still rolls out version 3');

  assert.equal((await b.once()).code, 0);
  assert.equal(await b.liveFile('index.html'), 'version 3\n', 'B was not sent back to version 2');
  assert.equal((await a.once()).code, 0);
  assert.equal(await a.liveFile('index.html'), 'version 3\n');
});
