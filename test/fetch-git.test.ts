// Git remotes end to end: the real CLI against real repositories served over file://, a plain
// path, git daemon, smart HTTP(S) with and without basic auth, and sshd.
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile, readlink, access } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseGitRemote } from '../src/core/git-url.js';
import { makeSandbox, runCli, writeRecordingHook, type Sandbox } from './helpers/cli.js';
import { createRepository, git, type TestRepository } from './helpers/git-repos.js';
import { makeCertificate, startGitDaemon, startGitHttpServer, startSshd, startStalledServer } from './helpers/git-servers.js';
import { temporaryDirectory } from './helpers/temp.js';

interface GitSetup {
  root: string;
  sandbox: Sandbox;
  repo: TestRepository;
  hookLog: string;
  deploy(remote: string, extraEnv?: NodeJS.ProcessEnv): ReturnType<typeof runCli>;
  hookRuns(): Promise<number>;
}

async function setup(t: TestContext, configText = ''): Promise<GitSetup> {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, configText);
  const repo = await createRepository(root);
  const hookLog = join(root, 'hooks.log');
  await writeRecordingHook(sandbox.postHooks, '10-record', hookLog);
  return {
    root,
    sandbox,
    repo,
    hookLog,
    deploy: (remote, extraEnv = {}) => runCli(sandbox.args(remote), extraEnv),
    hookRuns: async () => (await readFile(hookLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
  };
}

const standardTree = {
  'app/index.html': 'v1\n',
  'app/bin/start.sh': { content: '#!/bin/sh\necho start\n', mode: 0o755 },
  'app/latest': { symlink: 'index.html' },
  'docs/readme.md': 'not deployed with the app subdirectory\n',
  'top.txt': 'root file\n',
};

async function assertAppRelease(s: GitSetup, index = 'v1\n'): Promise<void> {
  assert.equal(await s.sandbox.liveFile('index.html'), index);
  assert.equal((await stat(join(s.sandbox.live, 'bin/start.sh'))).mode & 0o777, 0o755);
  assert.equal(await readlink(join(s.sandbox.live, 'latest')), 'index.html');
  const names = await readdir(s.sandbox.live);
  assert.ok(!names.includes('.git') && !names.includes('docs') && !names.includes('top.txt'), `only the subdirectory: ${names}`);
}

test('git URLs are split into repository, subdirectory and ref as SPEC.md says', () => {
  const cases: Array<[string, string, string, string | undefined]> = [
    ['git@host:org/app.git', 'git@host:org/app.git', '', undefined],
    ['user@host:org/app.git/sub/dir#branch', 'user@host:org/app.git', 'sub/dir', 'branch'],
    ['git+ssh://git@host/org/app.git/web#v1.2', 'ssh://git@host/org/app.git', 'web', 'v1.2'],
    ['git+https://host/org/app.git#main', 'https://host/org/app.git', '', 'main'],
    ['ssh://git@host:2222/org/app.git/a', 'ssh://git@host:2222/org/app.git', 'a', undefined],
    ['git://host/app.git/sub#dev', 'git://host/app.git', 'sub', 'dev'],
    ['https://host/org/app.git/sub#tag', 'https://host/org/app.git', 'sub', 'tag'],
    ['file:///srv/git/app.git#main', '/srv/git/app.git', '', 'main'],
    ['/srv/git/app.git', '/srv/git/app.git', '', undefined],
    ['/srv/git/app.git/deep/er/#0123456789abcdef0123456789abcdef01234567', '/srv/git/app.git', 'deep/er', '0123456789abcdef0123456789abcdef01234567'],
  ];
  for (const [remote, repository, subdirectory, ref] of cases) {
    const parsed = parseGitRemote(remote);
    assert.deepEqual([parsed.repository, parsed.subdirectory, parsed.ref], [repository, subdirectory, ref], remote);
  }
  const withToken = parseGitRemote('https://deployer:s3cret@host/org/app.git');
  assert.equal(withToken.repository, 'https://host/org/app.git');
  assert.deepEqual(withToken.credentials, { user: 'deployer', password: 's3cret' });
  assert.throws(() => parseGitRemote('/srv/app.git/../etc'), /has "\.\." in its subdirectory/);
  assert.throws(() => parseGitRemote('/srv/app.git#--upload-pack=evil'), /not a valid branch, tag or commit name/);
});

test('file:// URL with a subdirectory and #branch deploys only that subdirectory, with modes and inner symlinks', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const result = await s.deploy(`file://${s.repo.bare}/app#main`);
  assert.equal(result.code, 0, result.stderr);
  await assertAppRelease(s);
});

test('a plain path deploys the whole tree of the default branch, without .git', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const result = await s.deploy(s.repo.bare);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual((await readdir(s.sandbox.live)).sort(), ['app', 'docs', 'top.txt']);
});

test('a #branch URL deploys that branch, not the default one (the original never did)', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  await s.repo.checkoutBranch('release', true);
  await s.repo.commit({ 'app/index.html': 'release branch\n' });
  const result = await s.deploy(`${s.repo.bare}/app#release`);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'release branch\n');
});

test('a tag, an annotated tag and a full commit id each pin the release', async (t) => {
  const s = await setup(t);
  const first = await s.repo.commit(standardTree);
  await s.repo.tag('v1');
  await s.repo.tag('v1-annotated', { annotated: true });
  await s.repo.commit({ 'app/index.html': 'v2\n' });
  for (const ref of ['v1', 'v1-annotated', first]) {
    const result = await s.deploy(`${s.repo.bare}/app#${ref}`);
    assert.equal(result.code, 0, `${ref}: ${result.stderr}`);
    assert.equal(await s.sandbox.liveFile('index.html'), 'v1\n', ref);
    const saved = JSON.parse(await readFile(join(s.sandbox.cache, 'state.json'), 'utf8'));
    assert.equal(saved.current.revision, first, `${ref} resolves to the tagged commit`);
  }
  assert.equal(await s.hookRuns(), 1, 'the same commit is deployed once, whatever names it');
});

test('a first deploy of a branch fetches it at once, without listing the remote\'s refs; the next check lists them and fetches nothing', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const remote = `${s.repo.bare}/app#main`;
  const gitRuns = (stderr: string, command: string) => stderr.split('\n').filter((line) => new RegExp(`DEBUG git .*\\b${command}\\b`).test(line)).length;
  const first = await runCli([...s.sandbox.args(remote), '-v']);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual([gitRuns(first.stderr, 'ls-remote'), gitRuns(first.stderr, 'fetch')], [0, 1], first.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'v1\n');
  const idle = await runCli([...s.sandbox.args(remote), '-v']);
  assert.equal(idle.code, 0, idle.stderr);
  assert.deepEqual([gitRuns(idle.stderr, 'ls-remote'), gitRuns(idle.stderr, 'fetch')], [1, 0], idle.stderr);
});

test('a commit outside the subdirectory deploys nothing and runs no hook; one inside deploys', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const remote = `${s.repo.bare}/app#main`;
  assert.equal((await s.deploy(remote)).code, 0);
  await s.repo.commit({ 'docs/readme.md': 'docs changed\n' });
  const outside = await s.deploy(remote);
  assert.equal(outside.code, 0, outside.stderr);
  assert.match(outside.stderr, /does not change app; nothing to deploy/);
  assert.equal(await s.hookRuns(), 1);
  await s.repo.commit({ 'app/index.html': 'v2\n' });
  assert.equal((await s.deploy(remote)).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'v2\n');
  assert.equal(await s.hookRuns(), 2);
});

test('smart HTTP: an unchanged remote is checked without a pack; a new commit is fetched', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const server = await startGitHttpServer(t, join(s.root, 'srv'));
  const remote = server.url('app.git/app#main');
  assert.equal((await s.deploy(remote)).code, 0);
  await assertAppRelease(s);
  const packsAfterDeploy = server.packRequests;
  assert.ok(packsAfterDeploy >= 1);
  const unchanged = await s.deploy(remote);
  assert.equal(unchanged.code, 0, unchanged.stderr);
  assert.equal(server.packRequests, packsAfterDeploy, 'no pack was requested for an unchanged remote');
  await s.repo.commit({ 'app/index.html': 'v2\n' });
  assert.equal((await s.deploy(remote)).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'v2\n');
});

test('git daemon (git://) deploys and follows a force-push backwards', async (t) => {
  const s = await setup(t);
  const first = await s.repo.commit(standardTree);
  await s.repo.commit({ 'app/index.html': 'v2\n' });
  const daemon = await startGitDaemon(t, join(s.root, 'srv'));
  const remote = daemon.url('app.git/app#main');
  assert.equal((await s.deploy(remote)).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'v2\n');
  await s.repo.resetHard(first);
  await s.repo.push(true);
  const result = await s.deploy(remote);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'v1\n');
});

test('a branch switch in the config deploys the other branch', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  await s.repo.checkoutBranch('dev', true);
  await s.repo.commit({ 'app/index.html': 'dev\n' });
  assert.equal((await s.deploy(`${s.repo.bare}/app#main`)).code, 0);
  assert.equal((await s.deploy(`${s.repo.bare}/app#dev`)).code, 0);
  assert.equal(await s.sandbox.liveFile('index.html'), 'dev\n');
});

test('HTTPS with basic auth: git+https:// and https://…/app.git/sub#tag deploy; the token reaches no log, state or process argument', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  await s.repo.tag('v1');
  const token = 'tok-3f9a1c77e2b5';
  const certificate = await makeCertificate(join(s.root, 'tls'));
  const server = await startGitHttpServer(t, join(s.root, 'srv'), { auth: { user: 'deployer', password: token }, tls: certificate });
  // A git on PATH that records its own arguments before running the real one.
  const shims = join(s.root, 'shims');
  const argvLog = join(s.root, 'argv.log');
  await mkdir(shims);
  await writeFile(join(shims, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${argvLog}\nexec /usr/bin/git "$@"\n`);
  await chmod(join(shims, 'git'), 0o755);
  const env = { GIT_SSL_CAINFO: certificate.certPath, PATH: `${shims}:${process.env.PATH}` };

  const plus = await s.deploy(`git+${server.url('app.git/app#main', `deployer:${token}`)}`, env);
  assert.equal(plus.code, 0, plus.stderr);
  const tagged = await runCli([...s.sandbox.args(server.url('app.git/app#v1', `deployer:${token}`)), '-v'], env);
  assert.equal(tagged.code, 0, tagged.stderr);
  await assertAppRelease(s);
  const wrong = await runCli([...s.sandbox.args(server.url('app.git/app#main', 'deployer:wrong-token-value')), '-v'], env);
  assert.equal(wrong.code, 3);
  assert.match(wrong.stderr, /authentication failed/);
  await assertAppRelease(s);

  const argv = await readFile(argvLog, 'utf8');
  assert.match(argv, /ls-remote/);
  const base64 = Buffer.from(`deployer:${token}`).toString('base64');
  for (const [name, text] of [['argv', argv], ['stderr', plus.stderr + tagged.stderr + wrong.stderr], ['state', await readFile(join(s.sandbox.cache, 'state.json'), 'utf8')]]) {
    for (const secret of [token, base64, 'wrong-token-value']) assert.ok(!text?.includes(secret), `${secret} leaked into ${name}`);
  }
  const mirrors = join(s.sandbox.cache, 'git');
  for (const mirror of await readdir(mirrors)) {
    assert.ok(!(await readFile(join(mirrors, mirror, '.git', 'config'), 'utf8')).includes(token), 'the mirror config holds no token');
  }
});

test('failures keep the live release: unknown branch, missing subdirectory, unreachable and stalled servers', async (t) => {
  const s = await setup(t, 'git-timeout = 2\n');
  await s.repo.commit(standardTree);
  assert.equal((await s.deploy(`${s.repo.bare}/app#main`)).code, 0);
  const live = await s.sandbox.liveTarget();
  const stalledPort = await startStalledServer(t);
  const cases: Array<[string, RegExp]> = [
    [`${s.repo.bare}/app#no-such-branch`, /has no branch or tag "no-such-branch"; check the part after #/],
    [`${s.repo.bare}/missing/dir#main`, /the subdirectory "missing\/dir" does not exist in commit [0-9a-f]{12}/],
    [`${s.repo.bare}/top.txt#main`, /"top\.txt" in .* is a file, not a directory/],
    // A first deploy of a branch fetches it without ls-remote first (one connection fewer).
    ['git://127.0.0.1:1/app.git#main', /git fetch of git:\/\/127\.0\.0\.1:1\/app\.git#main failed: the server could not be reached/],
    [`git://127.0.0.1:${stalledPort}/app.git#main`, /took longer than git-timeout \(2 seconds\) and was ended with its child processes/],
    [`${s.root}/nowhere.git#main`, /the repository was not found/],
  ];
  for (const [remote, message] of cases) {
    // A case that hung (the stalled server) would run into the test's own time limit.
    const result = await s.deploy(remote);
    assert.equal(result.code, 3, `${remote}: ${result.stderr}`);
    assert.match(result.stderr, message, remote);
    assert.equal(await s.sandbox.liveTarget(), live, remote);
    assert.equal(await s.sandbox.liveFile('index.html'), 'v1\n');
  }
});

test('the subdirectory is a name, not a pattern: GIT_GLOB_PATHSPECS or GIT_ICASE_PATHSPECS in the agent\'s environment neither fail the check nor widen it', async (t) => {
  const s = await setup(t);
  await s.repo.commit({ ...standardTree, 'APP/other.html': 'another directory, the same name but for case\n', 'apple/x.txt': 'a directory that starts alike\n' });
  for (const variable of ['GIT_GLOB_PATHSPECS', 'GIT_ICASE_PATHSPECS', 'GIT_LITERAL_PATHSPECS']) {
    await rm(s.sandbox.cache, { recursive: true, force: true });
    const result = await s.deploy(`${s.repo.bare}/app#main`, { [variable]: '1' });
    assert.equal(result.code, 0, `${variable}: ${result.stderr}`);
    await assertAppRelease(s);
    assert.deepEqual((await readdir(s.sandbox.live)).sort(), ['bin', 'index.html', 'latest'], variable);
  }
  const globbed = await s.deploy(`${s.repo.bare}/ap*#main`, { GIT_GLOB_PATHSPECS: '1' });
  assert.equal(globbed.code, 3, globbed.stderr);
  assert.match(globbed.stderr, /the subdirectory "ap\*" does not exist in commit/);
  await assertAppRelease(s);
});

test('a crash leftover in the mirror (a lock file) is detected and the mirror rebuilt', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const remote = `${s.repo.bare}/app#main`;
  assert.equal((await s.deploy(remote)).code, 0);
  const mirrors = join(s.sandbox.cache, 'git');
  const [mirror] = await readdir(mirrors);
  await writeFile(join(mirrors, mirror as string, '.git', 'index.lock'), '');
  await writeFile(join(mirrors, mirror as string, '.git', 'shallow.lock'), '');
  await s.repo.commit({ 'app/index.html': 'v2\n' });
  const result = await s.deploy(remote);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /has left-over lock files \(.*index\.lock.*\).*rebuilding it/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'v2\n');
});

test('a symlink in the repository that points outside the release is refused', async (t) => {
  const s = await setup(t);
  await s.repo.commit({ ...standardTree, 'app/escape': { symlink: '../../../etc/passwd' } });
  const result = await s.deploy(`${s.repo.bare}/app#main`);
  assert.equal(result.code, 3);
  assert.match(result.stderr, /"escape" is a symlink to "..\/..\/..\/etc\/passwd", outside the release/);
  await assert.rejects(access(s.sandbox.live));
});

test('submodules: off deploys the repository\'s own files; shallow checks the submodule out too', async (t) => {
  const s = await setup(t);
  const library = await createRepository(s.root, 'library');
  await library.commit({ 'lib.txt': 'library file\n' });
  await s.repo.commit(standardTree);
  await git(s.repo.work, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', library.bare, 'app/vendor/library');
  await git(s.repo.work, 'commit', '-q', '-m', 'add submodule');
  await s.repo.push();
  const off = await s.deploy(`${s.repo.bare}/app#main`);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(await readdir(join(s.sandbox.live, 'vendor', 'library')), []);

  await writeFile(s.sandbox.config, 'git-submodules = shallow\n');
  await s.repo.commit({ 'app/index.html': 'v2\n' });
  const shallow = await s.deploy(`${s.repo.bare}/app#main`);
  assert.equal(shallow.code, 0, shallow.stderr);
  assert.equal(await readFile(join(s.sandbox.live, 'vendor', 'library', 'lib.txt'), 'utf8'), 'library file\n');
  assert.ok(!(await readdir(join(s.sandbox.live, 'vendor', 'library'))).includes('.git'));
});

test('SSH: ssh:// and git+ssh:// with a key and known_hosts deploy; an unknown host key is refused; accept-new records it', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const ssh = await startSshd(t, join(s.root, 'ssh'));
  const remote = `ssh://root@127.0.0.1:${ssh.port}${s.repo.bare}/app#main`;
  const keyConfig = `ssh-key = ${ssh.clientKey}\n`;

  await writeFile(s.sandbox.config, `${keyConfig}ssh-known-hosts = ${ssh.wrongKnownHosts}\n`);
  const refused = await s.deploy(remote);
  assert.equal(refused.code, 3);
  assert.match(refused.stderr, /the SSH host key is unknown or has changed.*ssh-known-hosts/);

  const emptyKnownHosts = join(s.root, 'ssh', 'empty_known_hosts');
  await writeFile(emptyKnownHosts, '');
  await writeFile(s.sandbox.config, `${keyConfig}ssh-known-hosts = ${emptyKnownHosts}\n`);
  const unknown = await s.deploy(remote);
  assert.equal(unknown.code, 3);
  assert.match(unknown.stderr, /host key is unknown/);

  await writeFile(s.sandbox.config, `${keyConfig}ssh-known-hosts = ${emptyKnownHosts}\nssh-strict-host-key-checking = accept-new\n`);
  const accepted = await s.deploy(remote);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(await readFile(emptyKnownHosts, 'utf8'), /ssh-ed25519/);

  await writeFile(s.sandbox.config, `${keyConfig}ssh-known-hosts = ${ssh.knownHosts}\n`);
  await s.repo.commit({ 'app/index.html': 'v2\n' });
  const plus = await s.deploy(`git+ssh://root@127.0.0.1:${ssh.port}${s.repo.bare}/app#main`);
  assert.equal(plus.code, 0, plus.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'v2\n');
});

test('SSH: the scp-like form user@host:path/app.git/sub#branch deploys (sshd on 127.0.0.3:22)', async (t) => {
  const s = await setup(t);
  await s.repo.commit(standardTree);
  const ssh = await startSshd(t, join(s.root, 'ssh'), '127.0.0.3', 22);
  await writeFile(s.sandbox.config, `ssh-key = ${ssh.clientKey}\nssh-known-hosts = ${ssh.knownHosts}\n`);
  const result = await s.deploy(`root@127.0.0.3:${s.repo.bare}/app#main`);
  assert.equal(result.code, 0, result.stderr);
  await assertAppRelease(s);
});

test('seven deploys of a 200 KB file changed in every commit: the mirror stays within a few packs and a bounded size, and each deploy is whole', async (t) => {
  const s = await setup(t);
  const { randomBytes } = await import('node:crypto');
  const { maxMirrorPacks, directorySize } = await import('../src/remotes/git/compact-mirror.js');
  const remote = `${s.repo.bare}/app#main`;
  const sizes: number[] = [];
  // The mirror is compacted after deploys 3, 5 and 7 (each adds two packs; more than 4 triggers it).
  for (let deploy = 1; deploy <= 7; deploy++) {
    // Outside the deployed directory as well: those blobs are never fetched, and must stay fetchable on demand.
    await s.repo.commit({ 'app/index.html': `v${deploy}\n`, 'app/data.bin': randomBytes(200 * 1024).toString('base64'), 'other/big.bin': randomBytes(100 * 1024).toString('base64') });
    const result = await s.deploy(remote);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await s.sandbox.liveFile('index.html'), `v${deploy}\n`);
    const [mirror] = await readdir(join(s.sandbox.cache, 'git'));
    const gitDirectory = join(s.sandbox.cache, 'git', mirror as string, '.git');
    const packs = (await readdir(join(gitDirectory, 'objects', 'pack'))).filter((name) => name.endsWith('.pack'));
    assert.ok(packs.length <= maxMirrorPacks, `after deploy ${deploy}: ${packs.length} packs`);
    const shallow = (await readFile(join(gitDirectory, 'shallow'), 'utf8')).split('\n').filter(Boolean);
    assert.ok(shallow.length <= maxMirrorPacks, `after deploy ${deploy}: ${shallow.length} shallow lines`);
    sizes.push(await directorySize(gitDirectory));
  }
  // Each deploy brings about 210 KB (the base64 of 200 KB, compressed); seven kept would be about 1.5 MB.
  assert.ok(Math.max(...sizes) < 0.8 * 1024 * 1024, `mirror sizes: ${sizes.join(', ')}`);
  assert.ok(sizes.at(-1)! < sizes[1]! * 1.1, `after the last deploy ${sizes.at(-1)} bytes, after the second ${sizes[1]}`);
});
