// Many apps in one agent: a conf.d/ of NAME.cfg files beside the main config file. Each app is
// checked, locked, cached and reverted as if it ran alone; a bad app file costs only that app;
// two apps that would share a live path, a releases/ or a cache are refused; whoever can write
// an app file decides what a root agent deploys, so only its owner may.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { runCli, writeHook } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { createRepository } from './helpers/git-repos.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

interface AppSpec {
  /** Lines of the app's file beyond remote and local. */
  lines?: string[];
  /** No archive is made: the remote does not exist. */
  missing?: boolean;
}

interface Host {
  root: string;
  config: string;
  conf: string;
  cache: string;
  live(name: string): string;
  archive(name: string): string;
  /** Makes (or replaces) an app's archive with one file holding `content`. */
  publish(name: string, content: string): Promise<void>;
  addApp(name: string, spec?: AppSpec): Promise<void>;
  liveContent(name: string): Promise<string>;
}

/** A host with a main config file (cache, empty hook directories) and a conf.d/ of the given apps. */
async function makeHost(t: TestContext, apps: Record<string, AppSpec>, mainLines: string[] = []): Promise<Host> {
  const root = await temporaryDirectory(t);
  const host: Host = {
    root,
    config: join(root, 'etc', 'repo-deploy.cfg'),
    conf: join(root, 'etc', 'conf.d'),
    cache: join(root, 'cache'),
    live: (name) => join(root, 'srv', name, 'current'),
    archive: (name) => join(root, 'remotes', `${name}.zip`),
    async publish(name, content) {
      await zipTree({ 'index.html': content }, host.archive(name), join(root, 'remotes'));
    },
    async addApp(name, spec = {}) {
      await mkdir(join(root, 'srv', name), { recursive: true });
      if (!spec.missing) await host.publish(name, `${name} 1\n`);
      await writeFile(join(host.conf, `${name}.cfg`), [`remote = ${host.archive(name)}`, `local = ${host.live(name)}`, ...(spec.lines ?? [])].join('\n') + '\n', { mode: 0o600 });
    },
    liveContent: (name) => readFile(join(host.live(name), 'index.html'), 'utf8'),
  };
  await mkdir(host.conf, { recursive: true, mode: 0o755 });
  await mkdir(join(root, 'remotes'), { recursive: true });
  for (const phase of ['pre-update.d', 'post-update.d']) await mkdir(join(root, 'etc', phase), { recursive: true });
  await writeFile(host.config, [`cache = ${host.cache}`, `pre-hooks = ${join(root, 'etc', 'pre-update.d')}`, `post-hooks = ${join(root, 'etc', 'post-update.d')}`, ...mainLines].join('\n') + '\n', { mode: 0o600 });
  for (const [name, spec] of Object.entries(apps)) await host.addApp(name, spec);
  return host;
}

const exists = (path: string) => stat(path).then(() => true, () => false);

test('a conf.d of three apps: -f deploys each to its own live path with a cache of its own, status lists each, --app checks one', async (t) => {
  const host = await makeHost(t, { api: {}, worker: {}, site: {} });
  // One hook directory, the main file's, shared by every app: each run is told its app.
  const told = join(host.root, 'told');
  await writeHook(join(host.root, 'etc', 'post-update.d'), '50-tell', `echo "$REPO_DEPLOY_APP" >> ${told}`);
  const first = await runCli(['-f', '-c', host.config]);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual((await readFile(told, 'utf8')).trim().split('\n').sort(), ['api', 'site', 'worker']);
  for (const name of ['api', 'worker', 'site']) {
    assert.equal(await host.liveContent(name), `${name} 1\n`);
    assert.ok(await exists(join(host.cache, 'apps', name, 'state.json')), `${name} has its own state`);
    assert.match(first.stderr, new RegExp(`deployed revision \\w+ as release \\S+ app=${name}`));
  }

  const status = await runCli(['status', '-c', host.config]);
  assert.equal(status.code, 0, status.stderr);
  assert.deepEqual(status.stdout.split('\n').filter((line) => line.startsWith('app ')), ['api', 'site', 'worker'].map((name) => `app ${name} (${join(host.conf, `${name}.cfg`)})`));
  const json = JSON.parse((await runCli(['status', '--json', '-c', host.config])).stdout) as { apps: Record<string, { live: { release: string } }> };
  assert.deepEqual(Object.keys(json.apps), ['api', 'site', 'worker']);
  assert.equal(json.apps.worker!.live.release, await readlink(host.live('worker')).then((target) => target.replace('releases/', '')));

  await host.publish('worker', 'worker 2\n');
  await host.publish('api', 'api 2\n');
  const one = await runCli(['-f', '-c', host.config, '--app', 'worker']);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(await host.liveContent('worker'), 'worker 2\n');
  assert.equal(await host.liveContent('api'), 'api 1\n', 'an app not named is not checked');
  assert.doesNotMatch(one.stderr, /app=api/);

  const rollback = await runCli(['rollback', '-c', host.config]);
  assert.equal(rollback.code, 2);
  assert.match(rollback.stderr, /rollback acts on one app, and this agent has 3 \(api, site, worker\); name one: repo-deploy rollback --app api/);
  const unknown = await runCli(['status', '-c', host.config, '--app', 'wroker']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--app "wroker": no such app in .*conf\.d \(api, site, worker\)/);
  const rolledBack = await runCli(['rollback', '-c', host.config, '--app', 'worker']);
  assert.equal(rolledBack.code, 0, rolledBack.stderr);
  assert.equal(await host.liveContent('worker'), 'worker 1\n');
  assert.equal(await host.liveContent('site'), 'site 1\n');
});

test('-f over apps that fail differently exits with the worst code (a blocked update over a failed fetch), and the good app still deploys', async (t) => {
  const host = await makeHost(t, {});
  const blockingHooks = join(host.root, 'etc', 'site-pre.d');
  await writeHook(blockingHooks, '10-refuse', 'echo "not today" >&2; exit 1');
  await host.addApp('api');
  await host.addApp('worker', { missing: true });
  await host.addApp('site', { lines: [`pre-hooks = ${blockingHooks}`] });
  const run = await runCli(['-f', '-c', host.config]);
  assert.equal(run.code, 4, run.stderr);
  assert.equal(await host.liveContent('api'), 'api 1\n');
  assert.equal(await exists(host.live('worker')), false);
  assert.equal(await exists(host.live('site')), false);
  assert.match(run.stderr, /app=worker/);
  assert.match(run.stderr, /not today/);
});

test('a bad app file is skipped and named, the other apps deploy, and check-config fails naming the file', async (t) => {
  const host = await makeHost(t, { api: {} });
  await writeFile(join(host.conf, 'metrics.cfg'), `remote = ${host.archive('api')}\nlocal = ${join(host.root, 'srv', 'metrics', 'current')}\nhttp-listen = 127.0.0.1:9464\n`, { mode: 0o600 });
  await writeFile(join(host.conf, 'typo.cfg'), `remote = ${host.archive('api')}\nlocall = /srv/typo/current\n`, { mode: 0o600 });
  const run = await runCli(['-f', '-c', host.config]);
  assert.equal(run.code, 2, run.stderr);
  assert.equal(await host.liveContent('api'), 'api 1\n');
  assert.match(run.stderr, /app metrics skipped: .*metrics\.cfg:3: http-listen is the whole agent's, not one app's; set it in .*repo-deploy\.cfg/);
  assert.match(run.stderr, /app typo skipped: .*typo\.cfg:2: unknown key "locall"; did you mean "local"\?/);

  const check = await runCli(['check-config', '-c', host.config]);
  assert.equal(check.code, 2);
  assert.match(check.stdout, /^app api \(/m);
  assert.match(check.stdout, /^FAILED  app metrics: /m);
  assert.match(check.stderr, /check-config: 2 app files cannot be used \(.*metrics\.cfg, .*typo\.cfg\)/);

  const status = await runCli(['status', '-c', host.config]);
  assert.match(status.stdout, /app typo \(.*typo\.cfg\)\n  SKIPPED: .*unknown key "locall"/);
});

test('two apps on one live path, or on live paths whose releases/ would be one, are refused naming both files; nothing is deployed', async (t) => {
  const host = await makeHost(t, { api: {} });
  await writeFile(join(host.conf, 'copy.cfg'), `remote = ${host.archive('api')}\nlocal = ${host.live('api')}\n`, { mode: 0o600 });
  const same = await runCli(['-f', '-c', host.config]);
  assert.equal(same.code, 2);
  assert.match(same.stderr, /the apps api \(.*api\.cfg\) and copy \(.*copy\.cfg\) share one live path, .*srv\/api\/current/);
  assert.equal(await exists(host.live('api')), false);

  await writeFile(join(host.conf, 'copy.cfg'), `remote = ${host.archive('api')}\nlocal = ${join(host.root, 'srv', 'api', 'other')}\n`, { mode: 0o600 });
  const shared = await runCli(['-f', '-c', host.config]);
  assert.equal(shared.code, 2);
  assert.match(shared.stderr, /share one releases directory, .*srv\/api\/releases; releases\/ sits beside the live path/);

  await writeFile(join(host.conf, 'copy.cfg'), `remote = ${host.archive('api')}\nlocal = ${join(host.root, 'srv', 'copy', 'current')}\ncache = ${join(host.cache, 'apps', 'api')}\n`, { mode: 0o600 });
  const cache = await runCli(['-f', '-c', host.config]);
  assert.equal(cache.code, 2);
  assert.match(cache.stderr, /share one cache/);
});

test('the main file naming a remote while conf.d holds apps is refused; -r on the command line still runs the one remote it names', async (t) => {
  const host = await makeHost(t, { api: {} });
  await writeFile(host.config, `${await readFile(host.config, 'utf8')}remote = ${host.archive('api')}\n`);
  const run = await runCli(['-f', '-c', host.config]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /repo-deploy\.cfg:4 names a remote, and .*conf\.d holds apps \(api\.cfg\); move the main file's remote and local into/);
  const oneOff = await runCli(['-f', '-c', host.config, '-r', host.archive('api'), '-l', join(host.root, 'srv', 'one-off', 'current')]);
  assert.equal(oneOff.code, 0, oneOff.stderr);
  assert.equal(await readFile(join(host.root, 'srv', 'one-off', 'current', 'index.html'), 'utf8'), 'api 1\n');
  assert.doesNotMatch(oneOff.stderr, /app=/);
});

test('an app file or a conf.d that another user can write is refused: a local user cannot choose what the agent deploys', async (t) => {
  const host = await makeHost(t, { api: {}, shop: {} });
  await chmod(join(host.conf, 'shop.cfg'), 0o666);
  const run = await runCli(['-f', '-c', host.config]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /app shop skipped: the app file .*shop\.cfg can be written by group or others \(mode 666\): anyone who can write it decides what this agent deploys; chmod go-w/);
  assert.equal(await host.liveContent('api'), 'api 1\n');
  assert.equal(await exists(host.live('shop')), false);

  if (process.getuid?.() === 0) {
    // Owned by nobody, mode 600: nobody could rewrite it at will.
    await chmod(join(host.conf, 'shop.cfg'), 0o600);
    await chown(join(host.conf, 'shop.cfg'), 65534, 65534);
    const owned = await runCli(['-f', '-c', host.config]);
    assert.equal(owned.code, 2);
    assert.match(owned.stderr, /the app file .*shop\.cfg is owned by uid 65534, neither this agent's user \(uid 0\) nor root/);
    // And nobody cannot add an app: the directory is root's and not writable by others.
    assert.throws(() => execFileSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', `echo "remote = /tmp/x.zip" > ${join(host.conf, 'evil.cfg')}`], { stdio: 'pipe' }));
  }
  await chmod(host.conf, 0o777);
  const open = await runCli(['-f', '-c', host.config]);
  assert.equal(open.code, 2);
  assert.match(open.stderr, /the apps directory .*conf\.d can be written by group or others \(mode 777\)/);
});

test('absurd app files: a FIFO, /dev/zero behind a link, a name that is no name; each costs only its own app', async (t) => {
  const host = await makeHost(t, { api: {} });
  execFileSync('mkfifo', ['-m', '600', join(host.conf, 'fifo.cfg')]);
  execFileSync('ln', ['-s', '/dev/zero', join(host.conf, 'zero.cfg')]);
  await writeFile(join(host.conf, '-rf.cfg'), `remote = ${host.archive('api')}\n`, { mode: 0o600 });
  const run = await runCli(['-f', '-c', host.config]);
  assert.equal(run.code, 2);
  assert.equal(await host.liveContent('api'), 'api 1\n');
  assert.match(run.stderr, /app fifo skipped: .*no remote is set/);
  assert.match(run.stderr, /app zero skipped: .*zero\.cfg can be written by group or others|app zero skipped: .*larger than/);
  assert.match(run.stderr, /app -rf skipped: .*"-rf" cannot name an app/);
});

test('a hung pre-update hook in one app holds back no other app, and after kill -9 of the daemon each app recovers on its own', async (t) => {
  const host = await makeHost(t, {}, ['schedule = * * * * * *']);
  const hang = join(host.root, 'hang');
  const started = join(host.root, 'hook-started');
  const release = join(host.root, 'release-hook');
  const slowHooks = join(host.root, 'etc', 'slow-pre.d');
  // Hangs while `hang` exists, until `release` does (the test stands in for a hook that never
  // ends); one left running by kill -9 ends when the test's directory is removed.
  await writeHook(slowHooks, '10-wait', `if [ -e ${hang} ]; then touch ${started}; while [ ! -e ${release} ] && [ -d ${host.root} ]; do sleep 0.1; done; fi\nexit 0`);
  await host.addApp('slow', { lines: [`pre-hooks = ${slowHooks}`, 'hook-timeout = 3600'] });
  await host.addApp('fast');

  const daemon = startAgent(t, ['-c', host.config]);
  await daemon.waitFor(/deployed revision .* app=slow/, 60_000);
  await daemon.waitFor(/deployed revision .* app=fast/, 60_000);
  await writeFile(hang, '');
  await host.publish('slow', 'slow 2\n');
  const hookStarted = daemon.lines.length;
  await daemon.waitFor(/running pre-update hook.*10-wait.*app=slow|new revision .* app=slow/, 60_000, hookStarted);
  while (!(await exists(started))) await new Promise((resolve) => setTimeout(resolve, 50));

  // While slow's hook hangs, fast is checked every second and deploys its new revision.
  const afterHang = daemon.lines.length;
  await host.publish('fast', 'fast 2\n');
  await daemon.waitFor(/deployed revision .* app=fast/, 60_000, afterHang);
  assert.equal(await host.liveContent('fast'), 'fast 2\n');
  assert.equal(await host.liveContent('slow'), 'slow 1\n', 'slow is still in its pre-update hook');
  assert.equal(await exists(release), false);

  daemon.child.kill('SIGKILL');
  await daemon.done;
  await rm(hang);
  await writeFile(release, '');
  const again = startAgent(t, ['-c', host.config]);
  await again.waitFor(/deployed revision .* app=slow/, 60_000);
  assert.equal(await host.liveContent('slow'), 'slow 2\n');
  assert.equal(await host.liveContent('fast'), 'fast 2\n');
  const stopped = await again.stop();
  assert.equal(stopped.code, 0);
  const status = JSON.parse((await runCli(['status', '--json', '-c', host.config])).stdout) as { apps: Record<string, { interruptedSwitch: unknown; lastError: unknown }> };
  assert.equal(status.apps.slow!.interruptedSwitch, null);
  assert.equal(status.apps.fast!.interruptedSwitch, null);
});

test('one HTTP server for every app: /metrics labels each series with app, /healthz reports each, POST /check?app=NAME checks that app with its own secret', async (t) => {
  const agentSecret = 'agent-secret-0123456789abcdef';
  const apiSecret = 'api-secret-0123456789abcdef';
  const host = await makeHost(t, {}, ['schedule = 0 0 1 1 *', 'http-listen = 127.0.0.1:0', `webhook-secret = ${agentSecret}`]);
  await host.addApp('api', { lines: [`webhook-secret = ${apiSecret}`] });
  await host.addApp('web');
  const daemon = startAgent(t, ['-c', host.config]);
  const serving = await daemon.waitFor(/serving \/healthz, \/metrics and POST \/check on http:\/\/127\.0\.0\.1:(\d+)/);
  const base = `http://127.0.0.1:${/:(\d+)/.exec(serving.split('http://')[1]!)![1]}`;
  await daemon.waitFor(/deployed revision .* app=api/, 60_000);
  await daemon.waitFor(/deployed revision .* app=web/, 60_000);

  // The log line comes before the check has ended (its history told, its state saved) and been counted: wait for that.
  let metrics = '';
  while (!/repo_deploy_checks_total\{app="api",result="updated"\} 1[\s\S]*repo_deploy_checks_total\{app="web",result="updated"\} 1|repo_deploy_checks_total\{app="web",result="updated"\} 1[\s\S]*repo_deploy_checks_total\{app="api",result="updated"\} 1/.test(metrics)) {
    metrics = await (await fetch(`${base}/metrics`)).text();
    await sleep(50);
  }
  assert.match(metrics, /repo_deploy_checks_total\{app="api",result="updated"\} 1/);
  assert.match(metrics, /repo_deploy_checks_total\{app="web",result="updated"\} 1/);
  assert.match(metrics, /repo_deploy_live_release_info\{app="web",release="[^"]+",revision="sha256:[0-9a-f]{64}"\} 1/);
  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok', apps: { api: { status: 'ok', consecutiveFailedChecks: 0 }, web: { status: 'ok', consecutiveFailedChecks: 0 } } });
  assert.deepEqual(await (await fetch(`${base}/healthz?app=web`)).json(), { app: 'web', status: 'ok', consecutiveFailedChecks: 0 });
  assert.equal((await fetch(`${base}/healthz?app=nope`)).status, 404);

  // The agent's secret is not api's: refused. api's own secret checks api, and only api.
  assert.equal((await fetch(`${base}/check?app=api`, { method: 'POST', headers: { authorization: `Bearer ${agentSecret}` } })).status, 401);
  await host.publish('api', 'api 2\n');
  await host.publish('web', 'web 2\n');
  const before = daemon.lines.length;
  assert.equal((await fetch(`${base}/check?app=api`, { method: 'POST', headers: { authorization: `Bearer ${apiSecret}` } })).status, 202);
  await daemon.waitFor(/deployed revision .* app=api/, 60_000, before);
  assert.equal(await host.liveContent('api'), 'api 2\n');
  assert.equal(await host.liveContent('web'), 'web 1\n', 'web has a yearly schedule and was not asked');
  // POST /check with no app, with the agent's secret, checks every app.
  const all = daemon.lines.length;
  assert.equal((await fetch(`${base}/check`, { method: 'POST', headers: { authorization: `Bearer ${agentSecret}` } })).status, 202);
  await daemon.waitFor(/deployed revision .* app=web/, 60_000, all);
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0);
});

test('SIGHUP reads conf.d again: an app added starts, a changed app restarts with its new settings, a removed one stops, a bad main file changes nothing', async (t) => {
  const host = await makeHost(t, { api: {} }, ['schedule = 0 0 1 1 *', 'http-listen = 127.0.0.1:0']);
  const daemon = startAgent(t, ['-c', host.config]);
  const serving = await daemon.waitFor(/serving \/healthz, \/metrics on http:\/\/127\.0\.0\.1:\d+/);
  const metrics = () => fetch(`http://127.0.0.1:${/127\.0\.0\.1:(\d+)/.exec(serving)![1]}/metrics`).then((response) => response.text());
  /** /metrics once `settled` holds of it: a check's series are recorded just after its last log line. */
  const metricsOnce = async (settled: (text: string) => boolean) => {
    let text = await metrics();
    for (let tries = 0; !settled(text) && tries < 50; tries++) text = await new Promise((resolve) => setTimeout(resolve, 100)).then(metrics);
    return text;
  };
  await daemon.waitFor(/deployed revision .* app=api/, 60_000);

  await host.addApp('web');
  let mark = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  await daemon.waitFor(/SIGHUP received: reading the apps again and checking each now/, 15_000, mark);
  await daemon.waitFor(/app web added/, 15_000, mark);
  await daemon.waitFor(/deployed revision .* app=web/, 60_000, mark);
  assert.equal(await host.liveContent('web'), 'web 1\n');
  assert.match(await metricsOnce((text) => /app="web",result="updated"/.test(text)), /repo_deploy_checks_total\{app="web",result="updated"\} 1/);
  const healthOf = (app: string) => fetch(`http://127.0.0.1:${/127\.0\.0\.1:(\d+)/.exec(serving)![1]}/healthz?app=${app}`).then((response) => response.status);
  assert.equal(await healthOf('web'), 200, 'an app added by SIGHUP is served by /healthz?app=');

  // api now deploys another archive: a changed app restarts and checks its new remote.
  await zipTree({ 'index.html': 'api from elsewhere\n' }, join(host.root, 'remotes', 'api-next.zip'), join(host.root, 'remotes'));
  await writeFile(join(host.conf, 'api.cfg'), `remote = ${join(host.root, 'remotes', 'api-next.zip')}\nlocal = ${host.live('api')}\n`, { mode: 0o600 });
  await rm(join(host.conf, 'web.cfg'));
  mark = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  await daemon.waitFor(/app api changed: it restarts with its new settings/, 15_000, mark);
  await daemon.waitFor(/app web is no longer in the apps directory: it stops/, 15_000, mark);
  await daemon.waitFor(/deployed revision .* app=api/, 60_000, mark);
  assert.equal(await host.liveContent('api'), 'api from elsewhere\n');
  assert.equal(await host.liveContent('web'), 'web 1\n', 'a removed app stops; its live release stays');
  // Its series leave /metrics once its loop has ended (at once here: it was idle).
  const exported = await metricsOnce((text) => !/app="web"/.test(text));
  assert.doesNotMatch(exported, /app="web"/);
  assert.equal(await healthOf('web'), 404, 'a removed app is no longer served');
  assert.match(exported, /app="api"/);

  const good = await readFile(host.config, 'utf8');
  await writeFile(host.config, `${good}no-such-key = 1\n`);
  mark = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  await daemon.waitFor(/the apps could not be read again; they run as they were: .*unknown key "no-such-key"/, 15_000, mark);
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0);
  assert.match(stopped.stderr, /repo-deploy stopped/);
});

test('a group of two remotes, a zip and a git branch, is one release: built from both, switched as one, reverted as one', async (t) => {
  const host = await makeHost(t, {});
  const repository = await createRepository(join(host.root, 'repos'), 'site');
  await repository.commit({ 'index.html': 'site 1\n' });
  const live = join(host.root, 'srv', 'web', 'current');
  await mkdir(join(host.root, 'srv', 'web'), { recursive: true });
  await host.publish('api', 'api 1\n');
  await writeFile(join(host.conf, 'api.cfg'), `group = web\nremote = ${host.archive('api')}\nlocal = ${live}\n`, { mode: 0o600 });
  await writeFile(join(host.conf, 'site.cfg'), `group = web\nremote = ${repository.bare}#main\nlocal = ${live}\n`, { mode: 0o600 });
  const both = async () => [await readFile(join(live, 'api', 'index.html'), 'utf8'), await readFile(join(live, 'site', 'index.html'), 'utf8')];
  const releases = () => readdir(join(host.root, 'srv', 'web', 'releases')).then((names) => names.filter((name) => !name.startsWith('.')));

  const first = await runCli(['-f', '-c', host.config]);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(await both(), ['api 1\n', 'site 1\n']);
  assert.match(first.stderr, /new revision \w+: group of 2: api .*; site .* app=web/);
  const status = await runCli(['status', '-c', host.config]);
  assert.match(status.stdout, /^app web \(/m);
  assert.match(status.stdout, /remote: +group web \(api: .*api\.zip, site: .*site\.git#main\)/);

  const idle = await runCli(['-f', '-c', host.config]);
  assert.equal(idle.code, 0, idle.stderr);
  assert.match(idle.stderr, /up to date: release \S+ app=web/);
  assert.equal((await releases()).length, 1);

  // One member changes: a new release of both, the other's files as they were.
  await repository.commit({ 'index.html': 'site 2\n' });
  const second = await runCli(['-f', '-c', host.config]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /group of 2: api unchanged; site \w+ -> /);
  assert.deepEqual(await both(), ['api 1\n', 'site 2\n']);
  const good = await readlink(live);
  const verified = await runCli(['verify', '-c', host.config, '--app', 'web']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);

  // Both change, and a post-update hook fails: both go back, in one rename.
  await writeHook(join(host.root, 'etc', 'post-update.d'), '50-fail', `[ -e ${join(host.root, 'fail')} ] && exit 1\nexit 0`);
  await writeFile(join(host.root, 'fail'), '');
  await host.publish('api', 'api 3\n');
  await repository.commit({ 'index.html': 'site 3\n' });
  const reverted = await runCli(['-f', '-c', host.config]);
  assert.equal(reverted.code, 5, reverted.stderr);
  assert.equal(await readlink(live), good);
  assert.deepEqual(await both(), ['api 1\n', 'site 2\n']);

  // A member that cannot be fetched: nothing half-built goes live.
  await rm(join(host.root, 'fail'));
  await rm(host.archive('api'));
  const missing = await runCli(['-f', '-c', host.config]);
  assert.equal(missing.code, 3, missing.stderr);
  assert.equal(await readlink(live), good);

  // Members that disagree on what they share are refused, named.
  await host.publish('api', 'api 3\n');
  await writeFile(join(host.conf, 'site.cfg'), `group = web\nremote = ${repository.bare}#main\nlocal = ${live}\nkeep-releases = 9\n`, { mode: 0o600 });
  const disagree = await runCli(['-f', '-c', host.config]);
  assert.equal(disagree.code, 2);
  assert.match(disagree.stderr, /app web skipped: the apps api and site of group web set keep-releases differently/);
  assert.equal(await readlink(live), good);
});

test('a burst of SIGHUPs while an app is added starts it once: reloads never overlap', async (t) => {
  const host = await makeHost(t, { api: {} }, ['schedule = 0 0 1 1 *']);
  const daemon = startAgent(t, ['-c', host.config]);
  await daemon.waitFor(/deployed revision .* app=api/, 60_000);
  for (let index = 0; index < 40; index++) await host.addApp(`web-${index}`);
  const mark = daemon.lines.length;
  // Apart enough that the kernel does not merge them into one, close enough that reloads overlap.
  for (let signal = 0; signal < 10; signal++) {
    daemon.child.kill('SIGHUP');
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
  for (let index = 0; index < 40; index++) await daemon.waitFor(new RegExp(`deployed revision .* app=web-${index} `), 60_000, mark);
  const added = daemon.lines.slice(mark).filter((line) => /app web-\d+ added/.test(line));
  assert.equal(added.length, 40, added.join('\n'));
  assert.deepEqual(daemon.lines.slice(mark).filter((line) => /another repo-deploy run holds the lock|ERROR/.test(line)), []);
  const stopped = await daemon.stop();
  assert.equal(stopped.code, 0);
});

test('-c naming a directory of more app files than an agent runs (1,001) is refused at once, as is -c DIR with -r', async (t) => {
  const root = await temporaryDirectory(t);
  const directory = join(root, 'apps');
  await mkdir(directory, { mode: 0o755 });
  for (let index = 0; index <= 1000; index++) await writeFile(join(directory, `app-${index}.cfg`), `remote = /srv/app-${index}.zip\n`, { mode: 0o600 });
  const many = await runCli(['-f', '-c', directory]);
  assert.equal(many.code, 2);
  assert.match(many.stderr, /the apps directory .*apps holds 1001 \.cfg files; the agent runs at most 1000 apps/);
  const withRemote = await runCli(['-f', '-c', directory, '-r', '/srv/one.zip']);
  assert.equal(withRemote.code, 2);
  assert.match(withRemote.stderr, /-c names the directory .*apps \(one app per file\), and -r names one remote/);
});
