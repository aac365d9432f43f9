// A fleet under faults, continued (issue 29), against a real redis-server and real agents: a
// member killed after its swap, Redis restarted empty, members with other settings, a Cluster node
// or a replica named as the fleet's Redis, a manual promote and a bake time. Split from
// fleet-faults.test.ts so that each file stays well inside the runner's per-file timeout.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { freePort } from './helpers/git-servers.js';
import { rig, waitingHook } from './helpers/fleet-rig.js';

test('a canary killed (kill -9) in its gate is reported to the fleet when its agent next runs: the revision is halted, and no other server deploys it', async (t) => {
  const r = await rig(t, 'canary = 1\nmax-parallel = 1\nfleet-lease = 3\n');
  const gateFile = join(r.root, 'gate-a');
  const a = await r.member('server-a', `health-check = sh -c 'echo "gate waiting"; while [ ! -e "${gateFile}" ]; do sleep 0.05; done'\nhealth-timeout = 600\n`);
  const b = await r.member('server-b');
  await r.publish('1');
  await writeFile(gateFile, '');
  assert.equal((await a.once()).code, 0);
  assert.equal((await b.once()).code, 0);
  await rm(gateFile);

  await r.publish('2');
  const canary = startAgent(t, [...a.daemonArgs, '-f']);
  await canary.waitFor(/health gate: running the health check/);
  process.kill(canary.child.pid!, 'SIGKILL');
  await canary.done;

  // The agent's next run reverts the interrupted switch and tells the fleet.
  await writeFile(gateFile, '');
  const next = await a.once();
  assert.match(next.stderr, /interrupted during gate; reverting/);
  assert.match(next.stderr, / ERROR told the fleet that revision [0-9a-f]{12} failed on this server: an update to release \S+ was interrupted during gate \(the agent stopped or crashed after the swap\)/);
  assert.match(next.stderr, /is now halted for the whole fleet: the canary failed/);
  assert.equal(await a.liveFile('index.html'), 'version 1\n');
  assert.ok((await r.fleetStatus()).progress?.halted, 'fleet status shows the revision halted');

  const other = await b.once();
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stderr, /is halted for the fleet: the canary failed/);
  assert.equal(await b.liveFile('index.html'), 'version 1\n', 'no other server deployed the revision that killed its canary');
  assert.equal(JSON.parse(await readFile(join(a.cache, 'state.json'), 'utf8')).fleetReports, undefined, 'the report was delivered once');
});

test('Redis restarted without persistence after a failed canary and a fleet halt: every member fails closed instead of rolling the halted revision out; after fleet init the halts they remember are written back', async (t) => {
  const r = await rig(t, 'canary = 1\nmax-parallel = 1\n');
  const a = await r.member('server-a');
  const b = await r.member('server-b');
  await r.publish('1');
  assert.equal((await a.once()).code, 0);
  assert.equal((await b.once()).code, 0);
  // Version 2 fails its canary (A's post-update hook) and is halted; B sees the halt.
  await writeHook(a.postHooks, '20-fails', '[ "$REPO_DEPLOY_PHASE" = post-update ] && exit 1 || exit 0');
  await r.publish('2');
  assert.equal((await a.once()).code, 5);
  const halted = await b.once();
  assert.match(halted.stderr, /is halted for the fleet: the canary failed/);
  assert.equal((await runCli(['fleet', 'halt', '--reason', 'incident 42', '-c', a.config])).code, 0);
  assert.match((await b.once()).stderr, /the fleet is halted since .*: incident 42/);

  // Redis comes back empty. Before: B deployed version 2 at its next check.
  await r.redis.stop();
  await r.redis.start();
  for (const member of [b, a]) {
    const lost = await member.once();
    assert.equal(lost.code, 3, lost.stderr);
    assert.match(lost.stderr, /the fleet's Redis at \S+ has lost fleet web's records \(the epoch [0-9a-f]+ this server knew is gone: .*\), and any halt with them: no update starts; look at "repo-deploy fleet status", then run "repo-deploy fleet init"/);
    assert.doesNotMatch(lost.stderr, /redis-pass-/, 'the password is never shown');
    assert.equal(await member.liveFile('index.html'), 'version 1\n');
  }

  const check = await runCli(['check-config', ...b.daemonArgs]);
  assert.equal(check.code, 3, check.stdout + check.stderr);
  assert.match(check.stdout, /^FAILED +fleet: the fleet's Redis at \S+ has lost fleet web's records/m);
  const init = await runCli(['fleet', 'init', '-c', b.config]);
  assert.equal(init.code, 0, init.stderr);
  const after = await b.once();
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stderr, /fleet web was initialised again by \S+ at \S+ \("repo-deploy fleet init"\); the 2 halts this server remembers were written back/);
  assert.equal(await b.liveFile('index.html'), 'version 1\n', 'the halted revision did not roll on');
  const status = await r.fleetStatus();
  assert.equal(status.halt?.reason, 'incident 42', 'the fleet halt is back');
  assert.equal((await runCli(['fleet', 'resume', '-c', a.config])).code, 0);
  const resumed = await b.once();
  assert.match(resumed.stderr, /is halted for the fleet: the canary failed/, 'the revision halt is back too');
  assert.equal(await b.liveFile('index.html'), 'version 1\n');
});

test('members of one fleet with other settings (max-parallel 3 where the fleet has 1, another remote): each is refused naming the difference, deploys nothing, until the configs agree or fleet configure', async (t) => {
  const r = await rig(t, '');
  const a = await r.member('server-a', 'max-parallel = 1\n');
  const b = await r.member('server-b', 'max-parallel = 3\n');
  await r.publish('1');
  assert.equal((await a.once()).code, 0);

  const refused = await b.once();
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /this server's config differs from fleet web's settings \(set by server-a at \S+\): max-parallel = 3 \(the fleet's: 1\); make the configs agree, or run "repo-deploy fleet configure"/);
  await assert.rejects(b.liveFile('index.html'), /ENOENT/);
  const check = await runCli(['check-config', ...b.daemonArgs]);
  assert.equal(check.code, 2, check.stdout);
  assert.match(check.stdout, /^FAILED +fleet: this server's config differs from fleet web's settings .*max-parallel = 3 \(the fleet's: 1\)/m);

  // Another remote: refused too, naming it (before, it published its own revisions as the fleet's).
  const elsewhere = await runCli([...b.daemonArgs.map((argument) => (argument === r.origin.url('/app.zip') ? r.origin.url('/other.zip') : argument)), '-f'], { REPO_DEPLOY_MAX_PARALLEL: '1' });
  assert.equal(elsewhere.code, 2, elsewhere.stderr);
  assert.match(elsewhere.stderr, /remote = http:\/\/127\.0\.0\.1:\d+\/other\.zip \(the fleet's: http:\/\/127\.0\.0\.1:\d+\/app\.zip\)/);

  // The operator makes B's settings the fleet's: B deploys, A (max-parallel 1) is refused now.
  const configure = await runCli(['fleet', 'configure', ...b.daemonArgs]);
  assert.equal(configure.code, 0, configure.stderr);
  assert.match(configure.stdout, /max-parallel = 3/);
  assert.equal((await b.once()).code, 0);
  assert.equal(await b.liveFile('index.html'), 'version 1\n');
  const nowA = await a.once();
  assert.equal(nowA.code, 2, nowA.stderr);
  assert.match(nowA.stderr, /max-parallel = 1 \(the fleet's: 3\)/);
});

test('fleet-redis naming a Redis Cluster node or a read-only replica: exit 2 saying which and how to name it, nothing deployed', async (t) => {
  const r = await rig(t, '');
  const a = await r.member('server-a');
  await r.publish('1');
  const spawnRedis = async (args: string[]) => {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', r.root, ...args], { stdio: 'ignore' });
    t.after(() => {
      if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
    });
    for (let tries = 0; (await runCli(['fleet', 'status', '-c', a.config], { REPO_DEPLOY_FLEET_REDIS: `redis://127.0.0.1:${port}/0` })).stderr.includes('ECONNREFUSED'); tries++) {
      assert.ok(tries < 100, 'redis-server did not start');
      await sleep(50);
    }
    return port;
  };
  const clusterNode = await spawnRedis(['--cluster-enabled', 'yes', '--cluster-config-file', join(r.root, 'nodes.conf')]);
  const cluster = await a.once({ REPO_DEPLOY_FLEET_REDIS: `redis://127.0.0.1:${clusterNode}/0` });
  assert.equal(cluster.code, 2, cluster.stderr);
  assert.match(cluster.stderr, /the fleet's Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is a Redis Cluster node \(it answered "CLUSTERDOWN Hash slot not served"\); name it as a Cluster: redis-cluster:\/\//);

  const replica = await spawnRedis(['--replicaof', '127.0.0.1', String(r.redis.port), '--masterauth', r.redis.password, '--requirepass', r.redis.password]);
  const readOnly = await a.once({ REPO_DEPLOY_FLEET_REDIS: r.redis.url.replace(`:${r.redis.port}/`, `:${replica}/`) });
  assert.equal(readOnly.code, 2, readOnly.stderr);
  assert.match(readOnly.stderr, /is a read-only replica, not the primary \(it answered "READONLY You can't write against a read only replica/);
  assert.doesNotMatch(readOnly.stderr, new RegExp(r.redis.password));
  await assert.rejects(a.liveFile('index.html'), /ENOENT/);
});

test('canary-promote = manual and bake-time: after the canary commits, the rest waits for fleet promote, then each next server waits bake-time after the last commit', async (t) => {
  const r = await rig(t, 'canary = 1\ncanary-promote = manual\nbake-time = 600\n');
  const a = await r.member('server-a');
  const b = await r.member('server-b');
  const c = await r.member('server-c');
  await r.publish('1');
  assert.equal((await a.once()).code, 0, 'the canary deploys');
  const revision = JSON.parse((await runCli(['status', '--json', ...a.daemonArgs])).stdout).live.revision as string;
  const committedAt = `repo-deploy:{web}:rev:${revision}:committed-at`;

  const unpromoted = await b.once();
  assert.equal(unpromoted.code, 0, unpromoted.stderr);
  assert.match(unpromoted.stderr, /waits for "repo-deploy fleet promote": the canary passed its gate \(1 of 1\), and canary-promote = manual/);
  await assert.rejects(b.liveFile('index.html'), /ENOENT/);
  assert.match((await runCli(['fleet', 'status', '-c', a.config])).stdout, /after the canaries, the rest waits for "repo-deploy fleet promote"/);

  const promote = await runCli(['fleet', 'promote', '-c', a.config]);
  assert.equal(promote.code, 0, promote.stderr);
  assert.match(promote.stdout, /revision [0-9a-f]{12} is promoted/);
  // Promoted, but the canary committed less than bake-time (600 s, on Redis's clock) ago.
  const baking = await b.once();
  assert.match(baking.stderr, /waits for bake-time: a server committed it \d+ s ago, the next may start in \d+ s/);
  await assert.rejects(b.liveFile('index.html'), /ENOENT/);
  // Ten minutes pass for the fleet: the commit's time is moved back (the test's clock for Redis).
  const at = await r.redisCli('GET', committedAt);
  await r.redisCli('SET', committedAt, String(Number(at.trim()) - 600_000), 'KEEPTTL');
  assert.equal((await b.once()).code, 0);
  assert.equal(await b.liveFile('index.html'), 'version 1\n', 'baked: the next server deploys');
  // B's commit starts the bake again: C waits.
  assert.match((await c.once()).stderr, /waits for bake-time/);
  await assert.rejects(c.liveFile('index.html'), /ENOENT/);
  assert.match((await runCli(['fleet', 'status', '-c', a.config])).stdout, /promoted by \S+ at \S+/);
});

test('min-healthy = 60%: with two of three servers updating, the third waits (max-parallel 3 would let it go); it deploys once they are done', async (t) => {
  const r = await rig(t, 'max-parallel = 3\nmin-healthy = 60%\n');
  const members = [await r.member('server-a'), await r.member('server-b'), await r.member('server-c')];
  await r.publish('1');
  for (const member of members) assert.equal((await member.once()).code, 0);
  const [a, b, c] = members as [typeof members[0], typeof members[0], typeof members[0]];
  const release = join(r.root, 'release');
  await writeHook(a.preHooks, '10-hold', waitingHook(release));
  await writeHook(b.preHooks, '10-hold', waitingHook(release));
  await r.publish('2');
  const first = startAgent(t, [...a.daemonArgs, '-f']);
  await first.waitFor(/\[10-hold\] inside, waiting/);
  const second = startAgent(t, [...b.daemonArgs, '-f']);
  await second.waitFor(/\[10-hold\] inside, waiting/);

  const third = await c.once();
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, /waits for min-healthy: 1 of 3 live servers are not updating, and one more starting would leave fewer than 1/);
  assert.equal(await c.liveFile('index.html'), 'version 1\n');

  await writeFile(release, '');
  assert.equal((await first.done).code, 0);
  assert.equal((await second.done).code, 0);
  assert.equal((await c.once()).code, 0);
  assert.equal(await c.liveFile('index.html'), 'version 2\n');
});

test('junk in the fleet\'s Redis (keys repo-deploy did not write): each check fails closed naming the key, never "cannot be reached"; the command that writes it anew clears it', async (t) => {
  const r = await rig(t, '');
  const a = await r.member('server-a');
  await r.publish('1');
  assert.equal((await a.once()).code, 0);
  await r.publish('2');

  for (const [key, junk, repair] of [
    ['epoch', 'not json at all', ['fleet', 'init']],
    ['policy', '[1,2,3]', ['fleet', 'configure']],
    ['halt', '42', ['fleet', 'resume']],
  ] as const) {
    await r.redisCli('SET', `repo-deploy:{web}:${key}`, junk);
    const check = await a.once();
    assert.equal(check.code, 3, check.stderr);
    assert.match(check.stderr, new RegExp(`holds something repo-deploy did not write under repo-deploy:\\{web\\}:${key} \\(".*"\\); no update starts; whoever can write to the fleet's Redis can steer the fleet`));
    assert.doesNotMatch(check.stderr, /cannot be reached|Unexpected token/);
    assert.equal(await a.liveFile('index.html'), 'version 1\n');
    const repaired = await runCli([...repair, ...a.daemonArgs]);
    assert.equal(repaired.code, 0, repaired.stderr);
  }
  assert.equal((await a.once()).code, 0);
  assert.equal(await a.liveFile('index.html'), 'version 2\n');
});

test('fleet rollback REVISION: every server goes back to its own release of it through the gated path, the remote\'s newer revision waits until fleet resume; a server without that release waits', async (t) => {
  const r = await rig(t, '');
  const a = await r.member('server-a', 'health-check = true\n');
  const b = await r.member('server-b', 'health-check = true\n');
  await r.publish('1');
  assert.equal((await a.once()).code, 0);
  assert.equal((await b.once()).code, 0);
  const first = (JSON.parse((await runCli(['status', '--json', ...a.daemonArgs])).stdout).live.revision as string).replace(/^sha256:/, '');
  await r.publish('2');
  assert.equal((await a.once()).code, 0);
  assert.equal((await b.once()).code, 0);
  assert.equal(await b.liveFile('index.html'), 'version 2\n');

  const rollback = await runCli(['fleet', 'rollback', first.slice(0, 12), '-c', a.config]);
  assert.equal(rollback.code, 0, rollback.stderr);
  assert.match(rollback.stdout, /rolls back to revision [0-9a-f]{12}/);
  for (const member of [a, b]) {
    const back = await member.once();
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stderr, /the fleet lets this server deploy [0-9a-f]{12}/);
    assert.match(back.stderr, /health gate: running the health check/, 'through the gate, as an update');
    assert.match(back.stderr, /rolled back with the fleet to revision [0-9a-f]{12}, release \S+ \(was release \S+\)/);
    assert.equal(await member.liveFile('index.html'), 'version 1\n');
  }
  // The remote still has version 2: it waits.
  const stays = await a.once();
  assert.equal(stays.code, 0, stays.stderr);
  assert.match(stays.stderr, /is rolled back to [0-9a-f]{12} by \S+ \("repo-deploy fleet rollback"\): it is not rolled out until "repo-deploy fleet resume"/);
  assert.equal(await a.liveFile('index.html'), 'version 1\n');
  assert.match((await runCli(['fleet', 'status', '-c', a.config])).stdout, /ROLLED BACK to it by \S+/);
  // A server that never had version 1 has nothing to go back to.
  const c = await r.member('server-c');
  const none = await c.once();
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stderr, /this server has no release of it on disk/);
  await assert.rejects(c.liveFile('index.html'), /ENOENT/);

  const resume = await runCli(['fleet', 'resume', '-c', a.config]);
  assert.match(resume.stdout, /the fleet rollback ends/);
  assert.equal((await a.once()).code, 0);
  assert.equal(await a.liveFile('index.html'), 'version 2\n');
});

test('a fleet-instance file that lies (junk, a FIFO, a huge file): the agent never hangs on it and writes a fresh id; a fresh id is a new agent, refused while the old one\'s heartbeat lasts', async (t) => {
  const r = await rig(t, '');
  const a = await r.member('server-a');
  await r.publish('1');
  const instanceFile = join(a.cache, 'fleet-instance');
  await mkdir(a.cache, { recursive: true, mode: 0o700 });
  const plants = [
    () => writeFile(instanceFile, 'not an id\n'),
    () => promisify(execFile)('mkfifo', [instanceFile]),
    () => writeFile(instanceFile, 'f'.repeat(1 << 20)),
  ];
  for (const [index, plant] of plants.entries()) {
    await rm(instanceFile, { force: true });
    await plant();
    const run = await a.once();
    assert.match(await readFile(instanceFile, 'utf8'), /^[0-9a-f]{32}\n$/, 'replaced by a fresh id, written whole');
    if (index === 0) {
      assert.equal(run.code, 0, run.stderr); // the first id this fleet sees
    } else {
      // The name is held by the id the previous run wrote, whose heartbeat is still live.
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /another agent \(instance [0-9a-f]{8}\) is a live member of fleet web under this server's name "server-a"/);
    }
  }
  assert.equal(await a.liveFile('index.html'), 'version 1\n', 'the release deployed under the first id stays live');
});
