// oci:// remotes against registries that ask for Bearer tokens, lie about their bytes, redirect
// blobs to object storage or send too much: each deploys exactly what its digests name or is
// refused, with the live release kept and no credential sent where it does not belong.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { makeSandbox, runCli, type Sandbox } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { startRegistryFront, startTokenService, type FrontMode } from './helpers/oci-fronts.js';
import { fluxLayerType, pushArtifact, registryBinary, startRegistry, type TestRegistry, tarGzOf } from './helpers/oci-registry.js';
import { listenOnLoopback } from './helpers/listen.js';
import { temporaryDirectory } from './helpers/temp.js';

const skip = existsSync(registryBinary) ? false : `needs Debian's docker-registry (${registryBinary}); .ci/run installs it`;
const login = { user: 'deployer', password: 'registry-secret-pass' };


const publish = async (t: TestContext, registry: TestRegistry, version: string, padding = 0) =>
  pushArtifact(registry, 'apps/site', 'stable', [{ mediaType: fluxLayerType, data: tarGzOf({ 'index.html': `version ${version}\n${'x'.repeat(padding)}` }) }]);

/** A sandbox whose HOME holds a Docker config.json with `login` for `host`, if given. */
async function sandboxFor(t: TestContext, hosts: string[], configText = ''): Promise<{ sandbox: Sandbox; env: NodeJS.ProcessEnv }> {
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, `oci-insecure = yes\n${configText}`);
  await mkdir(join(root, '.docker'));
  const auths = Object.fromEntries(hosts.map((host) => [host, { auth: Buffer.from(`${login.user}:${login.password}`).toString('base64') }]));
  await writeFile(join(root, '.docker', 'config.json'), JSON.stringify({ auths }), { mode: 0o600 });
  return { sandbox, env: { HOME: root } };
}

/** A registry with version 1 deployed through a front (in 'pass' mode) that a test then turns hostile. */
async function version1LiveThroughFront(t: TestContext) {
  const registry = await startRegistry(t);
  await publish(t, registry, '1');
  const front = await startRegistryFront(t, registry, 'pass');
  const { sandbox, env } = await sandboxFor(t, []);
  const remote = `oci://${front.host}/apps/site:stable`;
  assert.equal((await runCli(sandbox.args(remote), env)).code, 0);
  return { registry, front, sandbox, env, remote };
}

test('a registry asking for Bearer tokens (docker-registry with auth: token): the token is fetched from its realm with the login, and the artifact deploys', { skip }, async (t) => {
  const directory = await temporaryDirectory(t);
  const tokens = await startTokenService(t, directory, { login });
  const registry = await startRegistry(t, { tokens });
  await publish(t, registry, '1');
  const remote = `oci://${registry.host}/apps/site:stable`;
  const anonymous = await makeSandbox(await temporaryDirectory(t), 'oci-insecure = yes\n');
  const refused = await runCli(anonymous.args(remote), { HOME: anonymous.root });
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /token service refused an anonymous token \(401\).*oci-credentials/s);
  const { sandbox, env } = await sandboxFor(t, [registry.host]);
  const deployed = await runCli(sandbox.args(remote), env);
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  assert.deepEqual(tokens.issued, ['repository:apps/site:pull'], 'one token, for the login (the anonymous request was refused one)');
  assert.doesNotMatch(deployed.stdout + deployed.stderr, /registry-secret-pass|Bearer ey/);
});

test('a daemon keeps its Bearer token for the token\'s lifetime: many idle checks, one token', { skip }, async (t) => {
  const directory = await temporaryDirectory(t);
  const tokens = await startTokenService(t, directory);
  const registry = await startRegistry(t, { tokens });
  await publish(t, registry, '1');
  const front = await startRegistryFront(t, registry, 'pass');
  const { sandbox, env } = await sandboxFor(t, [], 'schedule = * * * * * *\n');
  const daemon = startAgent(t, sandbox.args(`oci://${front.host}/apps/site:stable`).filter((argument) => argument !== '-f'), env);
  await daemon.waitFor(/deployed revision/, 60_000);
  const heads = () => front.requests.filter((request) => request.startsWith('HEAD /v2/apps/site/manifests/')).length;
  const before = heads();
  while (heads() < before + 3) await sleep(50);
  await daemon.stop();
  assert.equal(tokens.issued.length, 1, `tokens: ${tokens.issued.join(', ')}`);
  assert.equal(front.requests.filter((request) => request.includes('/blobs/')).length, 1, 'the config is never fetched; the layer once');
});

test('runs of -f (each a new process, as from cron) share the Bearer token through the cache until it expires; a kept token the registry no longer takes, or a token file that is junk or a FIFO, costs one new token and nothing else', { skip }, async (t) => {
  const directory = await temporaryDirectory(t);
  const tokens = await startTokenService(t, directory);
  const registry = await startRegistry(t, { tokens });
  await publish(t, registry, '1');
  const { sandbox, env } = await sandboxFor(t, []);
  const remote = `oci://${registry.host}/apps/site:stable`;
  for (let run = 0; run < 3; run++) {
    const result = await runCli(sandbox.args(remote), env);
    assert.equal(result.code, 0, result.stderr);
  }
  assert.equal(tokens.issued.length, 1, `three runs, tokens: ${tokens.issued.join(', ')}`);
  const tokenFile = join(sandbox.cache, 'oci-tokens.json');
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);

  // A token the registry does not take (revoked, or signed by a key it no longer trusts).
  const kept = JSON.parse(readFileSync(tokenFile, 'utf8')) as { entries: Record<string, { bearer: string }> };
  for (const entry of Object.values(kept.entries)) entry.bearer = 'eyJhbGciOiJub25lIn0.e30.';
  writeFileSync(tokenFile, JSON.stringify(kept));
  await publish(t, registry, '2');
  const stale = await runCli(sandbox.args(remote), env);
  assert.equal(stale.code, 0, stale.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'version 2\n');
  assert.equal(tokens.issued.length, 2);

  for (const [what, replace] of [
    ['junk', () => writeFileSync(tokenFile, '{"entries": {"x": {"bearer": 42, "expiresAt": "soon"}}, "more": [')],
    ['a FIFO', () => { rmSync(tokenFile); execFileSync('mkfifo', [tokenFile]); }],
  ] as const) {
    replace();
    const result = await runCli(sandbox.args(remote), env);
    assert.equal(result.code, 0, `${what}: ${result.stderr}`);
    assert.equal(statSync(tokenFile).isFile(), true, `${what}: replaced by a token file`);
  }
  assert.equal(tokens.issued.length, 4);
});

test('a registry that wants Basic: the token file notes only that, never the password, and the next run sends the login at once (no 401 first)', { skip }, async (t) => {
  const registry = await startRegistry(t, { login });
  await publish(t, registry, '1');
  const front = await startRegistryFront(t, registry, 'pass');
  const { sandbox, env } = await sandboxFor(t, [front.host]);
  const remote = `oci://${front.host}/apps/site:stable`;
  assert.equal((await runCli(sandbox.args(remote), env)).code, 0);
  const kept = readFileSync(join(sandbox.cache, 'oci-tokens.json'), 'utf8');
  assert.doesNotMatch(kept, new RegExp(`${login.password}|${Buffer.from(`${login.user}:${login.password}`).toString('base64')}`));
  const before = front.requests.length;
  assert.equal((await runCli(sandbox.args(remote), env)).code, 0);
  assert.deepEqual(front.requests.slice(before), [`HEAD /v2/apps/site/manifests/stable ${login.user}`], 'an idle run is one HEAD, with the login');
});

for (const [mode, what] of [
  ['flip-blob-byte', 'blob'],
  ['flip-manifest-byte', 'manifest'],
] as const satisfies ReadonlyArray<readonly [FrontMode, string]>) {
  test(`a registry that sends a ${what} whose bytes do not match its digest is refused (exit 8), the live release kept`, { skip }, async (t) => {
    const { registry, front, sandbox, env, remote } = await version1LiveThroughFront(t);
    await publish(t, registry, '2');
    front.mode = mode;
    const refused = await runCli(sandbox.args(remote), env);
    assert.equal(refused.code, 8, refused.stderr);
    assert.match(refused.stderr, new RegExp(`${what} .* does not match its digest: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}`));
    assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  });
}

test('a blob redirected to object storage on another host is fetched there without the registry\'s Authorization header', { skip }, async (t) => {
  const registry = await startRegistry(t, { login });
  await publish(t, registry, '1');
  const front = await startRegistryFront(t, registry, 'redirect-blobs');
  const { sandbox, env } = await sandboxFor(t, [front.host]);
  const deployed = await runCli(sandbox.args(`oci://${front.host}/apps/site:stable`), env);
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  assert.ok(front.storageAuthorizations.length >= 1, 'the blob came from object storage');
  assert.deepEqual(front.storageAuthorizations.filter((header) => header !== undefined), [], 'no Authorization reached object storage');
});

test('a layer larger than max-download-size is refused before its bytes fill the disk, the live release kept', { skip }, async (t) => {
  const registry = await startRegistry(t);
  await publish(t, registry, '1');
  const { sandbox, env } = await sandboxFor(t, [], 'max-download-size = 64K\n');
  const remote = `oci://${registry.host}/apps/site:stable`;
  assert.equal((await runCli(sandbox.args(remote), env)).code, 0);
  const random = Buffer.alloc(200_000);
  for (let index = 0; index < random.length; index++) random[index] = (index * 2654435761) >>> 24;
  await pushArtifact(registry, 'apps/site', 'stable', [{ mediaType: fluxLayerType, data: random }]);
  const refused = await runCli(sandbox.args(remote), env);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /200000 bytes, larger than max-download-size = 65536/);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
});

/** A "registry" that answers a HEAD with a digest and then sends junk: an endless manifest, a token service speaking garbage, or nothing at all. */
async function junkRegistry(t: TestContext, kind: 'endless-manifest' | 'garbage-token' | 'silent' | 'tag-pages-loop' | 'tag-pages-endless'): Promise<string> {
  const digest = `sha256:${'a'.repeat(64)}`;
  let page = 0;
  const server = createServer((request, response) => {
    const url = request.url ?? '';
    if (kind === 'silent') return; // never answers: the agent's http-timeout ends it
    if (kind.startsWith('tag-pages')) {
      // Pages of no tags, each linking to the next: the same one again, or a new one forever.
      const next = kind === 'tag-pages-loop' ? '/v2/apps/site/tags/list?n=1000' : `/v2/apps/site/tags/list?n=1000&last=${page++}`;
      response.writeHead(200, { 'content-type': 'application/json', link: `<${next}>; rel="next"` });
      response.end('{"name":"apps/site","tags":[]}');
      return;
    }
    if (kind === 'garbage-token' && url.startsWith('/token')) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('<html>not a token</html>');
      return;
    }
    if (kind === 'garbage-token') {
      response.writeHead(401, { 'www-authenticate': `Bearer realm="http://${request.headers.host}/token",service="junk"` });
      response.end();
      return;
    }
    if (request.method === 'HEAD') {
      response.writeHead(200, { 'docker-content-digest': digest, 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      response.end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    const chunk = Buffer.alloc(1 << 20, 0x20);
    const pump = () => {
      while (response.write(chunk)) if (response.destroyed) return;
    };
    response.on('drain', pump);
    pump();
  });
  return `127.0.0.1:${await listenOnLoopback(t, server)}`;
}

for (const [kind, what, said] of [
  ['endless-manifest', 'an endless manifest', /manifest .* is larger than 4194304 bytes/],
  ['garbage-token', 'garbage for a token', /the token service's answer is not JSON/],
  ['silent', 'nothing at all (it never answers)', /cannot reach the registry 127\.0\.0\.1:\d+ \(.*[Tt]imeout/],
  ['tag-pages-loop', 'a tag list whose next page is the first again', /links back to a page it already sent/],
  ['tag-pages-endless', 'empty tag pages that link to new ones forever', /more than 1000 pages of tags/],
] as const) {
  test(`a registry that sends ${what} fails the check with a clear error (exit 3), nothing deployed`, async (t) => {
    const host = await junkRegistry(t, kind);
    const semver = kind.startsWith('tag-pages');
    const { sandbox, env } = await sandboxFor(t, [], `http-timeout = 2\n${semver ? 'oci-semver = ^1\n' : ''}`);
    const result = await runCli(sandbox.args(`oci://${host}/apps/site${semver ? '' : ':stable'}`), env);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, said);
    assert.equal(existsSync(sandbox.live), false);
  });
}

test('an oci-credentials or cosign-public-key that names a FIFO or /dev/zero is a usage error (exit 2) at once: no hang, no memory filled', { skip }, async (t) => {
  const registry = await startRegistry(t);
  await publish(t, registry, '1');
  const root = await temporaryDirectory(t);
  const fifo = join(root, 'fifo');
  execFileSync('mkfifo', [fifo]);
  for (const [key, path] of [['oci-credentials', fifo], ['oci-credentials', '/dev/zero'], ['cosign-public-key', fifo], ['cosign-public-key', '/dev/zero']] as const) {
    const sandbox = await makeSandbox(join(root, `${key}-${path.replaceAll('/', '_')}`), `oci-insecure = yes\n${key} = ${path}\n`);
    const result = await runCli(sandbox.args(`oci://${registry.host}/apps/site:stable`), { HOME: sandbox.root });
    assert.equal(result.code, 2, `${key} = ${path}: ${result.stderr}`);
    assert.match(result.stderr, new RegExp(`${key} = ${path.replaceAll('/', '\\/')} cannot be read \\(it is not a regular file\\)`));
    assert.equal(existsSync(sandbox.live), false);
  }
});

test('kill -9 in the middle of a layer download: the next run removes the partial download and deploys, the live release kept meanwhile', { skip }, async (t) => {
  const { registry, front, sandbox, env, remote } = await version1LiveThroughFront(t);
  // Random bytes: a layer gzip cannot shrink, so that half of it is a real partial download.
  await pushArtifact(registry, 'apps/site', 'stable', [{ mediaType: fluxLayerType, data: tarGzOf({ 'index.html': 'version 2\n', 'noise.txt': randomBytes(300_000).toString('base64') }) }]);
  front.mode = 'stall-blob-halfway';
  const agent = startAgent(t, sandbox.args(remote), env);
  while (!front.stalled) await sleep(20);
  const downloads = join(sandbox.cache, 'downloads');
  while ((await readdir(downloads).catch(() => [])).length === 0) await sleep(20);
  agent.child.kill('SIGKILL');
  await agent.done;
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  assert.ok((await readdir(downloads)).length > 0, 'the killed run left its partial download');
  front.mode = 'pass';
  const again = await runCli(sandbox.args(remote), env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await sandbox.liveFile('index.html'), 'version 2\n');
  assert.deepEqual(await readdir(downloads), [], 'no download left behind');
});
