// oci:// remotes against a real registry (Debian's docker-registry, the CNCF distribution
// registry) on loopback: Flux artifacts pushed by the test's own writer, deployed with -f;
// the idle check is one HEAD; bad bytes, bad logins and hostile layers are refused with the
// live release kept.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { makeSandbox, runCli, type Sandbox } from './helpers/cli.js';
import { startCountingRelay } from './helpers/counting-relay.js';
import { startRegistryFront } from './helpers/oci-fronts.js';
import { fluxLayerType, ociIndexType, ociManifestType, pushArtifact, pushBlob, pushManifest, registryBinary, startRegistry, type TestRegistry, tarGzOf } from './helpers/oci-registry.js';
import { temporaryDirectory } from './helpers/temp.js';

const skip = existsSync(registryBinary) ? false : `needs Debian's docker-registry (${registryBinary}); .ci/run installs it`;


interface OciSetup {
  registry: TestRegistry;
  sandbox: Sandbox;
  remote: string;
  publish(version: string): Promise<string>;
  once(...extra: string[]): ReturnType<typeof runCli>;
}

async function setup(t: TestContext, { login, configText = '' }: { login?: { user: string; password: string }; configText?: string } = {}): Promise<OciSetup> {
  const registry = await startRegistry(t, { login });
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, `oci-insecure = yes\n${configText}`);
  const remote = `oci://${registry.host}/apps/site:stable`;
  return {
    registry,
    sandbox,
    remote,
    publish: async (version) => pushArtifact(registry, 'apps/site', 'stable', [{ mediaType: fluxLayerType, data: tarGzOf({ 'index.html': `version ${version}\n`, 'assets/app.js': `console.log(${version});\n` }) }]),
    once: (...extra) => runCli(sandbox.args(remote, ...extra), { HOME: root }),
  };
}

test('a Flux artifact in a registry deploys with -f, and the next check, one HEAD, changes nothing', { skip }, async (t) => {
  const s = await setup(t);
  const digest = await s.publish('1');
  const first = await s.once();
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.equal(await s.sandbox.liveFile('assets/app.js'), 'console.log(1);\n');
  assert.match(first.stdout + first.stderr, new RegExp(`deployed revision ${digest.slice(7, 19)}`));
  const second = await s.once();
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stdout + second.stderr, /deployed revision/);
  await s.publish('2');
  const third = await s.once();
  assert.equal(third.code, 0, third.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
});

test('an idle check of an oci:// remote costs the registry under 2 KiB: a HEAD, no manifest body, no blob', { skip }, async (t) => {
  const s = await setup(t);
  await s.publish('1');
  const relay = await startCountingRelay(t, Number(s.registry.host.split(':')[1]));
  const remote = `oci://127.0.0.1:${relay.port}/apps/site:stable`;
  assert.equal((await runCli(s.sandbox.args(remote), { HOME: s.sandbox.root })).code, 0);
  relay.reset();
  const idle = await runCli(s.sandbox.args(remote), { HOME: s.sandbox.root });
  assert.equal(idle.code, 0, idle.stderr);
  t.diagnostic(`an idle check received ${relay.bytes} bytes from the registry`);
  assert.ok(relay.bytes > 0 && relay.bytes < 2048, `the idle check received ${relay.bytes} bytes from the registry`);
});

test('a digest remote (oci://HOST/REPO@sha256:…) deploys exactly that manifest, whatever the tag says later', { skip }, async (t) => {
  const s = await setup(t);
  const digest = await s.publish('1');
  await s.publish('2');
  const pinned = await runCli(s.sandbox.args(`oci://${s.registry.host}/apps/site@${digest}`), { HOME: s.sandbox.root });
  assert.equal(pinned.code, 0, pinned.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('an image index: the manifest of the host\'s platform (or oci-platform\'s) is deployed, and a platform it lacks is named with those it has', { skip }, async (t) => {
  const s = await setup(t);
  const registry = s.registry;
  const manifests = [];
  for (const [architecture, text] of [['amd64', 'for amd64'], ['arm64', 'for arm64']] as const) {
    const layer = tarGzOf({ 'index.html': `${text}\n` });
    const config = Buffer.from('{}');
    const manifest = { schemaVersion: 2, mediaType: ociManifestType, config: { mediaType: 'application/vnd.cncf.flux.config.v1+json', digest: await pushBlob(registry, 'apps/multi', config), size: 2 }, layers: [{ mediaType: fluxLayerType, digest: await pushBlob(registry, 'apps/multi', layer), size: layer.length }] };
    const digest = await pushManifest(registry, 'apps/multi', `only-${architecture}`, manifest, ociManifestType);
    manifests.push({ mediaType: ociManifestType, digest, size: Buffer.byteLength(JSON.stringify(manifest)), platform: { os: 'linux', architecture } });
  }
  await pushManifest(registry, 'apps/multi', 'v1', { schemaVersion: 2, mediaType: ociIndexType, manifests }, ociIndexType);
  const remote = `oci://${registry.host}/apps/multi:v1`;
  const arm = await runCli(s.sandbox.args(remote), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_PLATFORM: 'linux/arm64' });
  assert.equal(arm.code, 0, arm.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'for arm64\n');
  const other = await makeSandbox(await temporaryDirectory(t), 'oci-insecure = yes\n');
  const missing = await runCli(other.args(remote), { HOME: other.root, REPO_DEPLOY_OCI_PLATFORM: 'linux/riscv64' });
  assert.equal(missing.code, 3, missing.stderr);
  assert.match(missing.stderr, /is an image index with no manifest for linux\/riscv64 \(it has: linux\/amd64, linux\/arm64\).*set oci-platform/s);
  assert.equal(existsSync(other.live), false);
});

test('a registry behind Basic auth: refused without oci-credentials (exit 3, saying what to set), deployed with a config.json login', { skip }, async (t) => {
  const login = { user: 'deployer', password: 'registry-secret-pass' };
  const s = await setup(t, { login });
  await s.publish('1');
  const anonymous = await s.once();
  assert.equal(anonymous.code, 3, anonymous.stderr);
  assert.match(anonymous.stderr, /the registry (asks for credentials|refused access).*oci-credentials/s);
  assert.equal(existsSync(s.sandbox.live), false);
  const credentials = join(s.sandbox.root, 'registry.json');
  await writeFile(credentials, JSON.stringify({ auths: { [s.registry.host]: { auth: Buffer.from(`${login.user}:${login.password}`).toString('base64') } } }), { mode: 0o600 });
  const withLogin = await runCli(s.sandbox.args(s.remote), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_CREDENTIALS: credentials });
  assert.equal(withLogin.code, 0, withLogin.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.doesNotMatch(withLogin.stdout + withLogin.stderr, /registry-secret-pass/);
  await writeFile(credentials, JSON.stringify({ auths: { [s.registry.host]: { username: login.user, password: 'wrong-password-here' } } }), { mode: 0o600 });
  await s.publish('2');
  const wrong = await runCli(s.sandbox.args(s.remote), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_CREDENTIALS: credentials });
  assert.equal(wrong.code, 3, wrong.stderr);
  assert.match(wrong.stderr, /refused access \(401\) with the credentials of oci-credentials/);
  assert.doesNotMatch(wrong.stdout + wrong.stderr, /wrong-password-here/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('an artifact whose layer holds a traversal, or an artifact of several layers without oci-layer, is refused with the live release kept', { skip }, async (t) => {
  const s = await setup(t);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const hostile = Buffer.concat([tarHeader('../escaped', 1), Buffer.from('x'.padEnd(512, '\0')), Buffer.alloc(1024)]);
  await pushArtifact(s.registry, 'apps/site', 'stable', [{ mediaType: fluxLayerType, data: gzipSync(hostile) }]);
  const traversal = await s.once();
  assert.equal(traversal.code, 3, traversal.stderr);
  assert.match(traversal.stderr, /entry "\.\.\/escaped" climbs out with "\.\."/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.equal(existsSync(join(s.sandbox.root, 'www', 'escaped')), false);
  await pushArtifact(s.registry, 'apps/site', 'stable', [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', data: tarGzOf({ 'a.txt': 'a' }) },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', data: tarGzOf({ 'b.txt': 'b' }) },
  ]);
  const several = await s.once();
  assert.equal(several.code, 3, several.stderr);
  assert.match(several.stderr, /has 2 layers .* none is a Flux artifact's.*set oci-layer/s);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
});

test('oci:// remotes a registry cannot take are usage errors naming the form (exit 2)', async () => {
  for (const [remote, said] of [
    ['oci://registry.example/apps/site', /names no tag or digest/],
    ['oci://registry.example/Apps/Site:v1', /repository name a registry does not take/],
    ['oci://registry.example/apps/site@sha256:1234', /digest that is not sha256/],
    ['oci://user:pw@registry.example/apps/site:v1', /carries credentials.*oci-credentials/],
  ] as const) {
    const result = await runCli(['check-config', '-r', remote, '-l', '/tmp/repo-deploy-unused/current']);
    assert.equal(result.code, 2, `${remote}: ${result.stderr}`);
    assert.match(result.stderr, said);
    assert.doesNotMatch(result.stderr, /pw@/);
  }
});

test('absurd OCI settings are usage errors naming the setting (exit 2): a range that is no range, oci-semver beside a tag or on a zip remote, a tag of 300 characters', async () => {
  for (const [remote, env, said] of [
    ['oci://registry.example/apps/site', { REPO_DEPLOY_OCI_SEMVER: 'not a range at all' }, /oci-semver = "not a range at all" is not a semver range/],
    ['oci://registry.example/apps/site:v1', { REPO_DEPLOY_OCI_SEMVER: '^1' }, /oci-semver = \^1 chooses the tag, but the remote .* names one/],
    ['https://example.com/app.zip', { REPO_DEPLOY_OCI_SEMVER: '^1' }, /oci-semver is set, but the remote https:\/\/example\.com\/app\.zip is not an oci:\/\/ remote/],
    [`oci://registry.example/apps/site:${'v'.repeat(300)}`, {}, /has a tag that is not a registry tag/],
  ] as const) {
    const result = await runCli(['check-config', '-r', remote, '-l', '/tmp/repo-deploy-unused/current'], env);
    assert.equal(result.code, 2, `${remote}: ${result.stderr}`);
    assert.match(result.stderr, said);
  }
});

/** One ustar header (a file of `size` bytes named `name`), as a hostile publisher writes it. */
function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}


test('check-config reports the OCI settings (registry, login, platform, layer, signatures) and what the next check would deploy; a named credentials file that is not JSON fails its line', { skip }, async (t) => {
  const s = await setup(t);
  const digest = await s.publish('1');
  const args = (extra: string[] = []) => ['check-config', ...s.sandbox.args(s.remote).filter((argument) => argument !== '-f'), ...extra];
  const report = await runCli(args(), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_PLATFORM: 'linux/arm64' });
  assert.equal(report.code, 0, report.stderr);
  assert.match(report.stdout, new RegExp(`ok +oci: http://${s.registry.host.replaceAll('.', '\\.')}; anonymous \\(no login for ${s.registry.host.replaceAll('.', '\\.')} in .*config\\.json\\); platform linux/arm64; layer a Flux artifact's, or the only one; no signature required`));
  assert.match(report.stdout, new RegExp(`ok +found: the remote is reachable; revision ${digest.slice(7, 19)} .* would be deployed at the next check`));
  const credentials = join(s.sandbox.root, 'registry.json');
  await writeFile(credentials, 'this is not json', { mode: 0o600 });
  const bad = await runCli(args(), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_CREDENTIALS: credentials });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stdout, /FAILED +oci: .*registry\.json is not JSON/);
  assert.equal(existsSync(s.sandbox.live), false);
});

test('oci-semver chooses the highest tag in range from the whole tag list, followed page after page, a leading "v" allowed; no tag in range fails clearly', { skip }, async (t) => {
  const s = await setup(t);
  await s.publish('0.0');
  // 250 old versions: with pages of 100, the tags that matter are on the third page.
  const filler = await fetch(`http://${s.registry.host}/v2/apps/site/manifests/stable`, { headers: { accept: ociManifestType } }).then((response) => response.text());
  for (let patch = 0; patch < 250; patch++) await pushManifest(s.registry, 'apps/site', `0.0.${patch}`, JSON.parse(filler), ociManifestType);
  for (const version of ['1.3.9', 'v1.4.0', 'v1.4.2', '1.5.0-rc.1', '2.0.0']) {
    await s.publish(version);
    const body = await fetch(`http://${s.registry.host}/v2/apps/site/manifests/stable`, { headers: { accept: ociManifestType } }).then((response) => response.text());
    await pushManifest(s.registry, 'apps/site', version, JSON.parse(body), ociManifestType);
  }
  const front = await startRegistryFront(t, s.registry, 'paginate-tags');
  const remote = `oci://${front.host}/apps/site`;
  const result = await runCli(s.sandbox.args(remote), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_SEMVER: '^1.4' });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version v1.4.2\n');
  assert.equal(front.requests.filter((request) => request.includes('/tags/list')).length, 3, 'three pages asked for');
  const none = await runCli(s.sandbox.args(remote), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_SEMVER: '^3' });
  assert.equal(none.code, 3, none.stderr);
  assert.match(none.stderr, /has no tag that satisfies oci-semver = \^3 \(256 tags, 255 of them versions\)/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version v1.4.2\n');
  const both = await runCli(s.sandbox.args(`${remote}:v1.4.0`), { HOME: s.sandbox.root, REPO_DEPLOY_OCI_SEMVER: '^1.4' });
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /oci-semver = \^1\.4 chooses the tag, but the remote .* names one/);
});

test('an ORAS artifact with a directory (oras push of a folder: a tar.gz layer titled by it, io.deis.oras.content.unpack) deploys it under its title beside the files; a directory layer with entries outside its title is refused, the live release kept', { skip }, async (t) => {
  const s = await setup(t);
  const oras = (title: string, data: Buffer, unpack = false) => ({ mediaType: unpack ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', data, annotations: { 'org.opencontainers.image.title': title, ...(unpack ? { 'io.deis.oras.content.unpack': 'true' } : {}) } });
  const site = tarGzOf({ 'site/index.html': 'from a folder\n', 'site/css/app.css': 'body{}\n' });
  await pushArtifact(s.registry, 'apps/site', 'stable', [oras('VERSION', Buffer.from('7\n')), oras('site', site, true)], { configType: 'application/vnd.oci.empty.v1+json' });
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('site/index.html'), 'from a folder\n');
  assert.equal(await s.sandbox.liveFile('site/css/app.css'), 'body{}\n');
  assert.equal(await s.sandbox.liveFile('VERSION'), '7\n');
  assert.deepEqual((await readdir(s.sandbox.live)).sort(), ['VERSION', 'site']);
  const verified = await runCli(['verify', '-c', s.sandbox.config, '-l', s.sandbox.live, '--cache', s.sandbox.cache]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);

  await pushArtifact(s.registry, 'apps/site', 'stable', [oras('site', tarGzOf({ 'site/index.html': 'x\n', 'other/planted.txt': 'x\n' }), true)], { configType: 'application/vnd.oci.empty.v1+json' });
  const outside = await s.once();
  assert.equal(outside.code, 3, outside.stderr);
  assert.match(outside.stderr, /entry "other" lies outside the directory "site" its layer is titled/);
  assert.equal(await s.sandbox.liveFile('site/index.html'), 'from a folder\n');
  assert.deepEqual((await readdir(join(s.sandbox.root, 'www'))).filter((name) => name.includes('oras')), []);
});

test('an ORAS artifact of files (one layer per file, named by its title) deploys each file where its title says; a title that climbs out is refused', { skip }, async (t) => {
  const s = await setup(t);
  const orasFile = (title: string, text: string) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', data: Buffer.from(text), annotations: { 'org.opencontainers.image.title': title } });
  await pushArtifact(s.registry, 'apps/site', 'stable', [orasFile('index.html', 'from oras\n'), orasFile('config/app.json', '{"a":1}\n')], { configType: 'application/vnd.unknown.config.v1+json' });
  const result = await s.once();
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await s.sandbox.liveFile('index.html'), 'from oras\n');
  assert.equal(await s.sandbox.liveFile('config/app.json'), '{"a":1}\n');
  assert.match(result.stderr, /2 files\)/);
  // The release manifest holds each file's sha256, taken from its layer's digest: verify agrees with the files.
  const verified = await runCli(['verify', '-c', s.sandbox.config, '-l', s.sandbox.live, '--cache', s.sandbox.cache]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  await pushArtifact(s.registry, 'apps/site', 'stable', [orasFile('../escaped', 'x'), orasFile('index.html', 'y')], { configType: 'application/vnd.unknown.config.v1+json' });
  const escaped = await s.once();
  assert.equal(escaped.code, 3, escaped.stderr);
  assert.match(escaped.stderr, /entry "\.\.\/escaped" climbs out with "\.\."/);
  assert.equal(await s.sandbox.liveFile('index.html'), 'from oras\n');
  assert.equal(existsSync(join(s.sandbox.root, 'www', 'escaped')), false);
});
