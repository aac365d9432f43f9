// Fleet rollouts against a real redis-server on a loopback port, with real agents as separate
// processes (each with its own cache and live directory) and one HTTP origin. A pre-update hook
// and the health check write when each server's update starts and when its gate runs, so the
// tests can prove how many servers were updating at once.
import assert from 'node:assert/strict';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSandbox, runCli, writeHook, type Sandbox } from './helpers/cli.js';
import { startAgent, type RunningAgent } from './helpers/daemon.js';
import { startHttpServer, type TestHttpServer } from './helpers/http-server.js';
import { freePort } from './helpers/git-servers.js';
import { startRedis, type TestRedis } from './helpers/redis-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree, type TreeSpec } from './helpers/zips.js';

interface Member {
  host: string;
  sandbox: Sandbox;
  args: string[];
  agent?: RunningAgent;
}

interface Fleet {
  root: string;
  redis: TestRedis;
  origin: TestHttpServer;
  members: Member[];
  spans: string;
  publish(version: string, extra?: TreeSpec): Promise<void>;
  start(member: Member): RunningAgent;
  /** Waits until every listed member serves `version`. */
  waitForVersion(version: string, members?: Member[]): Promise<void>;
  liveVersion(member: Member): Promise<string | undefined>;
  command(...args: string[]): ReturnType<typeof runCli>;
  /** The most servers that were between their update's start and its gate at one instant. */
  mostAtOnce(): Promise<number>;
  starts(): Promise<string[]>;
  downloads(): number;
  /** Publishes version 1, starts every member, waits until all serve it; returns the update starts so far. */
  allOnVersion1(): Promise<number>;
  /** Waits until an update starts after the first `count` starts. */
  nextStart(count: number): Promise<void>;
}

/** `preUpdate` is more of the pre-update hook; $SANDBOX in it is the server's own directory, $FLEET the test's. */
async function fleet(t: TestContext, size: number, settings: string, preUpdate = ''): Promise<Fleet> {
  const root = await temporaryDirectory(t);
  const redis = await startRedis(t);
  const origin = await startHttpServer(t);
  const archive = join(root, 'app.zip');
  origin.route('/app.zip', { kind: 'file', path: archive });
  const spans = join(root, 'spans.log');
  const members: Member[] = [];
  for (let index = 0; index < size; index++) {
    const host = `server-${index}`;
    const gate = `echo "end ${host} $(date +%s%N)" >> ${spans}; test ! -e "$CURRENT_CONFIG/broken"`;
    const config = `fleet-redis = ${redis.url}\nfleet-name = web\nhost-id = ${host}\nschedule = * * * * * *\nhealth-check = ${gate}\n${settings}`;
    const sandbox = await makeSandbox(join(root, host), config);
    await writeHook(sandbox.preHooks, '10-span', `echo "start ${host} $(date +%s%N)" >> ${spans}\n${preUpdate.replaceAll('$SANDBOX', sandbox.root).replaceAll('$FLEET', root)}`);
    const args = sandbox.args(origin.url('/app.zip')).filter((argument) => argument !== '-f');
    members.push({ host, sandbox, args });
  }
  const value: Fleet = {
    root,
    redis,
    origin,
    members,
    spans,
    async publish(version, extra = {}) {
      await zipTree({ 'index.html': `version ${version}\n`, ...extra }, join(root, 'next.zip'), root);
      await rename(join(root, 'next.zip'), archive);
    },
    start(member) {
      member.agent = startAgent(t, member.args);
      return member.agent;
    },
    liveVersion: (member) => member.sandbox.liveFile('index.html').then((text) => text.trim().replace(/^version /, ''), () => undefined),
    async waitForVersion(version, which = members) {
      for (;;) {
        const versions = await Promise.all(which.map((member) => value.liveVersion(member)));
        if (versions.every((live) => live === version)) return;
        const exited = which.find((member) => member.agent && member.agent.child.exitCode !== null);
        if (exited) throw new Error(`${exited.host} exited:\n${exited.agent?.lines.join('\n')}`);
        await sleep(100);
      }
    },
    command: (...args) => runCli([...args, '-c', members[0]!.sandbox.config]),
    async mostAtOnce() {
      const events = (await readFile(spans, 'utf8')).split('\n').filter(Boolean).map((line) => {
        const [kind, host, at] = line.split(' ');
        return { kind, host, at: BigInt(at ?? '0') };
      });
      events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      let open = 0;
      let most = 0;
      const updating = new Set<string>();
      for (const event of events) {
        if (event.kind === 'start') updating.add(event.host ?? '');
        else updating.delete(event.host ?? '');
        open = updating.size;
        most = Math.max(most, open);
      }
      return most;
    },
    starts: async () => (await readFile(spans, 'utf8').catch(() => '')).split('\n').filter((line) => line.startsWith('start ')),
    downloads: () => origin.requests.filter((request) => request.path === '/app.zip' && request.status === 200).length,
    async allOnVersion1() {
      await value.publish('1');
      for (const member of members) value.start(member);
      await value.waitForVersion('1');
      return (await value.starts()).length;
    },
    async nextStart(count) {
      while ((await value.starts()).length === count) await sleep(50);
    },
  };
  return value;
}

async function stopAll(f: Fleet): Promise<string> {
  let output = '';
  for (const member of f.members) {
    if (!member.agent || member.agent.child.exitCode !== null || member.agent.child.signalCode !== null) continue;
    const result = await member.agent.stop();
    output += result.stderr;
  }
  return output;
}

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
  assert.equal(f.downloads() - downloadsBefore, 1, 'only the canary downloaded the revision');
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
