// A fleet under faults (issue 29), against a real redis-server and real agents: a member whose
// clock runs ahead, a halt while a member runs its pre-update hooks, a member paused (SIGSTOP)
// past fleet-lease in its gate. The invariants: never more than max-parallel servers between
// their swap and their commit; a halted revision is swapped in by no server after the halt.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSandbox, runCli, writeHook, type Sandbox } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { startRedis, type TestRedis } from './helpers/redis-server.js';
import { freePort } from './helpers/git-servers.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

/** What `fleet status --json` prints, as far as these tests read it. */
interface FleetStatusJson {
  halt: { reason: string } | null;
  members: Array<{ host: string; instance: string | null; clash: { instance: string } | null }>;
  current: { revision: string; by: string } | null;
  progress: { committed: string[]; inProgress: string[]; halted: unknown } | null;
}

interface Rig {
  root: string;
  redis: TestRedis;
  origin: TestHttpServer;
  publish(version: string): Promise<void>;
  /** A member named `host` (host-id), in its own directory (`directory`, default the name). */
  member(host: string, settings?: string, directory?: string): Promise<Sandbox & { daemonArgs: string[]; once: (env?: NodeJS.ProcessEnv) => ReturnType<typeof runCli> }>;
  fleetStatus(): Promise<FleetStatusJson>;
}

async function rig(t: TestContext, fleetSettings: string): Promise<Rig> {
  const root = await temporaryDirectory(t);
  const redis = await startRedis(t);
  const origin = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  origin.route('/app.zip', { kind: 'file', path: archive });
  const members: Sandbox[] = [];
  const value: Rig = {
    root,
    redis,
    origin,
    async publish(version) {
      await zipTree({ 'index.html': `version ${version}\n` }, join(root, 'next.zip'), root);
      await rename(join(root, 'next.zip'), archive);
    },
    async member(host, settings = '', directory = host) {
      const sandbox = await makeSandbox(join(root, directory), `fleet-redis = ${redis.url}\nfleet-name = web\nhost-id = ${host}\n${fleetSettings}${settings}`);
      members.push(sandbox);
      const args = sandbox.args(origin.url('/app.zip'));
      return { ...sandbox, daemonArgs: args.filter((argument) => argument !== '-f'), once: (env = {}) => runCli(args, env) };
    },
    async fleetStatus() {
      return JSON.parse((await runCli(['fleet', 'status', '--json', '-c', members[0]!.config])).stdout);
    },
  };
  return value;
}

/** A hook that says it runs, then waits until the test creates `release`. */
const waitingHook = (release: string) => `echo "inside, waiting"\nwhile [ ! -e "${release}" ]; do sleep 0.05; done`;

/** LD_PRELOAD for libfaketime (Debian's faketime package): a process whose clock runs `offset` ahead. */
function clockAhead(offset: string): NodeJS.ProcessEnv {
  for (const directory of ['/usr/lib/x86_64-linux-gnu/faketime', '/usr/lib/aarch64-linux-gnu/faketime', '/usr/lib/faketime']) {
    try {
      if (readdirSync(directory).includes('libfaketime.so.1')) return { LD_PRELOAD: join(directory, 'libfaketime.so.1'), FAKETIME: offset, DONT_FAKE_MONOTONIC: '1' };
    } catch {
      // not this layout
    }
  }
  throw new Error('libfaketime.so.1 not found: install Debian\'s faketime package (.ci/run does)');
}

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

test('a member paused (SIGSTOP) in its gate past fleet-lease: another takes the slot; the first, resumed, is not counted as committed and says so', async (t) => {
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
  // B's begin removed A's lapsed slot: whatever A's renewals find on waking, its commit is refused.
  await writeFile(release, '');
  const result = await first.done;
  assert.match(result.stderr, / ERROR revision [0-9a-f]{12} went live here, but this server's fleet slot lapsed before its gate ended .* the fleet does not count this server as committed/);
  assert.deepEqual((await r.fleetStatus()).progress?.committed, ['server-b']);
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

test('fleet-redis naming a Redis Cluster node or a read-only replica: exit 2 saying which, nothing deployed (Cluster and Sentinel are not supported)', async (t) => {
  const r = await rig(t, '');
  const a = await r.member('server-a');
  await r.publish('1');
  const spawnRedis = async (args: string[]) => {
    const port = await freePort();
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' });
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
  assert.match(cluster.stderr, /the fleet's Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is a Redis Cluster node \(it answered "CLUSTERDOWN Hash slot not served"\); point fleet-redis at a standalone Redis primary/);

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
  const redisCli = (...args: string[]) => promisify(execFile)('redis-cli', ['-p', String(r.redis.port), '-a', r.redis.password, '--no-auth-warning', ...args]);

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
  const { stdout: at } = await redisCli('GET', committedAt);
  await redisCli('SET', committedAt, String(Number(at.trim()) - 600_000), 'KEEPTTL');
  assert.equal((await b.once()).code, 0);
  assert.equal(await b.liveFile('index.html'), 'version 1\n', 'baked: the next server deploys');
  // B's commit starts the bake again: C waits.
  assert.match((await c.once()).stderr, /waits for bake-time/);
  await assert.rejects(c.liveFile('index.html'), /ENOENT/);
  assert.match((await runCli(['fleet', 'status', '-c', a.config])).stdout, /promoted by \S+ at \S+/);
});
