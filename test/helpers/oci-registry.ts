// A real OCI registry for tests: Debian's docker-registry (the CNCF distribution registry) on a
// free loopback port, storing in a temporary directory, anonymous or behind htpasswd Basic auth;
// stopped by its process id when the test ends. Artifacts are pushed by the test's own writer over
// the registry API (blob uploads, then the manifest), as `oras push` or `flux push artifact` would.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './git-servers.js';
import type { TokenService } from './oci-fronts.js';

export const registryBinary = '/usr/bin/docker-registry';

export interface TestRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  pid: number;
  /** Basic credentials the registry asks for, if any. */
  login?: { user: string; password: string };
  /** The token service whose Bearer tokens the registry asks for, if any. */
  tokens?: TokenService;
}

export interface PushedLayer {
  mediaType: string;
  data: Buffer;
  annotations?: Record<string, string>;
}

export const sha256Digest = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/**
 * Starts the registry; with `login` (and `moreLogins`), behind Basic auth (a bcrypt htpasswd made by htpasswd(1));
 * with `tokens`, asking for that service's Bearer tokens.
 */
export async function startRegistry(t: Pick<TestContext, 'after'>, { login, tokens, moreLogins = [] }: { login?: { user: string; password: string }; tokens?: TokenService; moreLogins?: Array<{ user: string; password: string }> } = {}): Promise<TestRegistry> {
  const port = await freePort();
  const directory = mkdtempSync(join(tmpdir(), 'repo-deploy-registry-'));
  let auth = '';
  if (login) {
    const lines = [login, ...moreLogins].map((each) => execFileSync('htpasswd', ['-Bbn', each.user, each.password], { encoding: 'utf8' }).trim());
    writeFileSync(join(directory, 'htpasswd'), `${lines.join('\n')}\n`);
    auth = `auth:\n  htpasswd:\n    realm: test-registry\n    path: ${join(directory, 'htpasswd')}\n`;
  }
  if (tokens) auth = `auth:\n  token:\n    realm: ${tokens.realm}\n    service: ${tokens.service}\n    issuer: ${tokens.issuer}\n    rootcertbundle: ${tokens.certificatePath}\n`;
  const config = join(directory, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(directory, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const child = spawn(registryBinary, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
  t.after(async () => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    await exited;
    rmSync(directory, { recursive: true, force: true });
  });
  for (let tries = 0; ; tries++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${stderr}`);
    const answered = await fetch(`http://127.0.0.1:${port}/v2/`).then((response) => response.status, () => 0);
    if (answered === 200 || answered === 401) break;
    if (tries > 400) throw new Error(`docker-registry did not answer: ${stderr}`);
    await sleep(25);
  }
  return { host: `127.0.0.1:${port}`, pid: child.pid!, login, tokens };
}

function authorization(registry: TestRegistry, repository: string): Record<string, string> {
  if (registry.tokens) return { authorization: `Bearer ${registry.tokens.tokenFor(repository, ['pull', 'push'])}` };
  return registry.login ? { authorization: `Basic ${Buffer.from(`${registry.login.user}:${registry.login.password}`).toString('base64')}` } : {};
}

/** Uploads one blob (monolithically: POST, then PUT with its digest); returns its descriptor's digest. */
export async function pushBlob(registry: TestRegistry, repository: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  const started = await fetch(`http://${registry.host}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: authorization(registry, repository) });
  if (started.status !== 202) throw new Error(`upload of ${digest} not started: ${started.status} ${await started.text()}`);
  const location = new URL(started.headers.get('location')!, `http://${registry.host}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { ...authorization(registry, repository), 'content-type': 'application/octet-stream' }, body: data });
  if (put.status !== 201) throw new Error(`upload of ${digest} refused: ${put.status} ${await put.text()}`);
  return digest;
}

/** Puts a manifest (any JSON, any media type) under `reference`; returns its digest. */
export async function pushManifest(registry: TestRegistry, repository: string, reference: string, manifest: object, mediaType: string): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const put = await fetch(`http://${registry.host}/v2/${repository}/manifests/${reference}`, { method: 'PUT', headers: { ...authorization(registry, repository), 'content-type': mediaType }, body });
  if (put.status !== 201) throw new Error(`manifest ${reference} refused: ${put.status} ${await put.text()}`);
  return sha256Digest(body);
}

export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
export const ociIndexType = 'application/vnd.oci.image.index.v1+json';
export const fluxConfigType = 'application/vnd.cncf.flux.config.v1+json';
export const fluxLayerType = 'application/vnd.cncf.flux.content.v1.tar+gzip';

/** An artifact as `flux push artifact` (or `oras push`) makes it: a config blob and the layers; returns the manifest's digest. */
export async function pushArtifact(registry: TestRegistry, repository: string, tag: string, layers: PushedLayer[], { configType = fluxConfigType } = {}): Promise<string> {
  const config = Buffer.from('{}');
  const descriptors = [];
  for (const layer of layers) descriptors.push({ mediaType: layer.mediaType, digest: await pushBlob(registry, repository, layer.data), size: layer.data.length, ...(layer.annotations ? { annotations: layer.annotations } : {}) });
  const manifest = {
    schemaVersion: 2,
    mediaType: ociManifestType,
    config: { mediaType: configType, digest: await pushBlob(registry, repository, config), size: config.length },
    layers: descriptors,
  };
  return pushManifest(registry, repository, tag, manifest, ociManifestType);
}

/** A tar.gz of `files` (path: text), made by GNU tar, as `flux push artifact` packs a directory. */
export function tarGzOf(files: Record<string, string>): Buffer {
  const directory = mkdtempSync(join(tmpdir(), 'repo-deploy-layer-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(directory, 'tree', name)), { recursive: true });
      writeFileSync(join(directory, 'tree', name), content);
    }
    execFileSync('tar', ['-czf', join(directory, 'layer.tgz'), '-C', join(directory, 'tree'), '.']);
    return readFileSync(join(directory, 'layer.tgz'));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
