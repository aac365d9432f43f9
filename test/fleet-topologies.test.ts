// A fleet whose Redis is not one plain server (issue 29 item 9), all real and on loopback: a
// primary with a replica and a Sentinel (redis-server --sentinel), where the agent asks the
// Sentinel for the primary at each check and follows a failover; and a three-primary Redis
// Cluster, where the fleet's keys share one hash slot and the client follows MOVED.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { makeSandbox, runCli } from './helpers/cli.js';
import { freePort } from './helpers/git-servers.js';
import { startHttpServer } from './helpers/http-server.js';
import { startRedis } from './helpers/redis-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';
import { parseRedisAddress } from '../src/settings/redis-address.js';

const run = promisify(execFile);

/** A redis-server (or Sentinel) in `directory`: a replica writes dump.rdb where it runs. */
function startServer(t: TestContext, directory: string, args: string[]): void {
  const child = spawn('redis-server', args, { stdio: 'ignore', cwd: directory });
  t.after(() => {
    if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
  });
}

/** redis-cli's answer, or '' while the server is not up. */
const ask = (port: number, password: string | undefined, ...args: string[]) =>
  run('redis-cli', ['-p', String(port), ...(password ? ['-a', password, '--no-auth-warning'] : []), ...args]).then(({ stdout }) => stdout.trim(), () => '');

async function until(what: string, condition: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; !(await condition()); tries++) {
    assert.ok(tries < 600, `${what} did not happen`);
    await sleep(50);
  }
}

test('a fleet found through Sentinel (redis-sentinel://): it deploys through the primary, and after the primary dies and the replica is promoted, the next check deploys through the new one', async (t) => {
  const root = await temporaryDirectory(t);
  const primary = await startRedis(t);
  const replicaPort = await freePort();
  startServer(t, root, ['--port', String(replicaPort), '--bind', '127.0.0.1', '--replicaof', '127.0.0.1', String(primary.port), '--masterauth', primary.password, '--requirepass', primary.password, '--save', '', '--appendonly', 'no', '--dir', root]);
  const sentinelPort = await freePort();
  const sentinelConfig = join(root, 'sentinel.conf');
  await writeFile(sentinelConfig, [
    `port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${root}`,
    `sentinel monitor fleetprimary 127.0.0.1 ${primary.port} 1`,
    `sentinel auth-pass fleetprimary ${primary.password}`,
    'sentinel down-after-milliseconds fleetprimary 1000',
    'sentinel failover-timeout fleetprimary 5000', '',
  ].join('\n'));
  startServer(t, root, [sentinelConfig, '--sentinel']);
  await until('the Sentinel sees the replica', async () => (await ask(sentinelPort, undefined, 'sentinel', 'replicas', 'fleetprimary')).includes(String(replicaPort)));

  const origin = await startHttpServer(t);
  const publish = async (version: string) => {
    await zipTree({ 'index.html': `version ${version}\n` }, join(root, `build-${version}.zip`), root);
    origin.route('/app.zip', { kind: 'file', path: join(root, `build-${version}.zip`) });
  };
  await publish('1');
  const sandbox = await makeSandbox(join(root, 'web-01'), `fleet-redis = redis-sentinel://:${primary.password}@127.0.0.1:${sentinelPort}/fleetprimary\nfleet-name = web\nhost-id = web-01\n`);
  const args = sandbox.args(origin.url('/app.zip'));
  const first = await runCli(args);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  assert.doesNotMatch(first.stderr, new RegExp(primary.password));
  const check = await runCli(['check-config', ...args.filter((argument) => argument !== '-f')]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /^ok +fleet: web on redis-sentinel:\/\/:\*\*\*@127\.0\.0\.1:\d+\/fleetprimary \(reachable\)/m);

  // The fleet's records reach the replica; then the primary dies and the Sentinel promotes it.
  await until('the replica has the fleet\'s epoch', async () => (await ask(replicaPort, primary.password, 'get', 'repo-deploy:{web}:epoch')) !== '');
  await primary.stop();
  await until('the Sentinel promotes the replica', async () => (await ask(sentinelPort, undefined, 'sentinel', 'get-master-addr-by-name', 'fleetprimary')).endsWith(String(replicaPort)));

  await publish('2');
  const second = await runCli(args);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /has lost fleet/);
  assert.equal(await sandbox.liveFile('index.html'), 'version 2\n');
  assert.match(await ask(replicaPort, primary.password, 'hget', 'repo-deploy:{web}:current', 'by'), /web-01/, 'the new primary holds the fleet');

  const bad = await runCli(args, { REPO_DEPLOY_FLEET_REDIS: 'redis-sentinel://127.0.0.1:notaport/fleetprimary' });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /fleet-redis is not a redis:\/\/, rediss:\/\/, redis-sentinel:\/\/ or redis-cluster:\/\/ URL; write it as redis:\/\/host:port\[\/db\], .*with "user:password@" after the "\/\/"/);
});

test('redis-sentinel:// addresses: several Sentinels, default port, IPv6, credentials and db; malformed ones are refused', () => {
  assert.deepEqual(parseRedisAddress('redis-sentinel://user:p%40ss@s1:26380,s2,[::1]:26381/primary/2'), {
    kind: 'sentinel', sentinels: [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }, { host: '::1', port: 26381 }], name: 'primary', username: 'user', password: 'p@ss', db: 2,
  });
  assert.deepEqual(parseRedisAddress('redis://:pw@127.0.0.1:6379/0'), { kind: 'standalone', url: 'redis://:pw@127.0.0.1:6379/0' });
  for (const bad of ['redis-sentinel://s1:26379', 'redis-sentinel://s1:99999/primary', 'redis-sentinel://s1:x/primary', 'redis-sentinel:///primary', 'http://s1/primary', 'redis-sentinel://s1/primary/db']) {
    assert.equal(parseRedisAddress(bad), undefined, bad);
  }
});

test('a fleet on a three-primary Redis Cluster (redis-cluster://, any node): it deploys, fleet status and fleet resume by prefix work, check-config is ok; a cluster node named as redis:// says how to name it', async (t) => {
  const root = await temporaryDirectory(t);
  const password = 'cluster-secret';
  const ports = [await freePort(), await freePort(), await freePort()];
  for (const port of ports) {
    startServer(t, root, ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(root, `nodes-${port}.conf`),
      '--requirepass', password, '--masterauth', password, '--save', '', '--appendonly', 'no', '--dir', root]);
  }
  for (const port of ports) await until(`node ${port} is up`, async () => (await ask(port, password, 'ping')) === 'PONG');
  await run('redis-cli', ['-a', password, '--no-auth-warning', '--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
  for (const port of ports) await until(`node ${port} sees the cluster ok`, async () => (await ask(port, password, 'cluster', 'info')).includes('cluster_state:ok'));

  const origin = await startHttpServer(t);
  await zipTree({ 'index.html': 'version 1\n' }, join(root, 'app.zip'), root);
  origin.route('/app.zip', { kind: 'file', path: join(root, 'app.zip') });
  // Named through one node only; the fleet's slot may live on another.
  const sandbox = await makeSandbox(join(root, 'web-01'), `fleet-redis = redis-cluster://:${password}@127.0.0.1:${ports[0]}\nfleet-name = web\nhost-id = web-01\n`);
  const args = sandbox.args(origin.url('/app.zip'));
  const deployed = await runCli(args);
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  assert.doesNotMatch(deployed.stderr, new RegExp(password));
  const status = await runCli(['fleet', 'status', '--json', '-c', sandbox.config]);
  assert.equal(status.code, 0, status.stderr);
  const parsed = JSON.parse(status.stdout) as { members: Array<{ host: string; alive: boolean }>; current: { revision: string } };
  assert.deepEqual(parsed.members.map((member) => [member.host, member.alive]), [['web-01', true]]);
  const resume = await runCli(['fleet', 'resume', parsed.current.revision.replace(/^sha256:/, '').slice(0, 12), '-c', sandbox.config]);
  assert.equal(resume.code, 0, resume.stderr);
  assert.match(resume.stdout, /revision [0-9a-f]{12} was not halted/);
  const check = await runCli(['check-config', ...args.filter((argument) => argument !== '-f')]);
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /^ok +fleet: web on redis-cluster:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(reachable\)/m);

  // Each node, named as a plain redis:// server: the one without the fleet's slot answers MOVED.
  const answers = [];
  for (const port of ports) answers.push(await runCli(args, { REPO_DEPLOY_FLEET_REDIS: `redis://:${password}@127.0.0.1:${port}/0` }));
  const moved = answers.find((answer) => answer.code === 2);
  assert.ok(moved, answers.map((answer) => answer.stderr).join('\n'));
  assert.match(moved.stderr, /is a Redis Cluster node \(it answered "MOVED \d+ 127\.0\.0\.1:\d+"\); name it as a Cluster: redis-cluster:\/\/host:port\[,host:port\] \(with "user:password@" after the "\/\/"\)/);
});
