// The OCI distribution protocol, as much as pulling needs: manifests (HEAD for the idle check,
// GET with every manifest type accepted), blobs by digest, the Bearer token flow a 401's
// challenge asks for (anonymous, or with Basic credentials to the token service), plain Basic
// auth, and redirects of blobs (to object storage), which never carry the Authorization header to
// another origin. Every manifest and blob is hashed while it streams and refused unless its bytes
// match their digest.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type Dispatcher } from '../../base/http-client.js';
import { createNewFileFlags } from '../../base/atomic-file.js';
import { DeployError, fetchError, messageOf, noSpaceError } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import type { ProgressSink } from '../../base/progress.js';
import type { Credentials } from '../../core/remote.js';
import { TokenStore } from './token-store.js';
import { parseChallenge, type Challenge } from './www-authenticate.js';

export const manifestMediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const acceptManifests = Object.values(manifestMediaTypes).join(', ');
/** A manifest is small; a registry that sends megabytes is refused before they fill memory. */
const largestManifest = 4 << 20;
const largestTokenResponse = 64 << 10;
const mostRedirects = 5;
const digestPattern = /^sha256:[0-9a-f]{64}$/;

export interface RegistryAccess {
  /** host[:port] */
  registry: string;
  /** Plain HTTP (oci-insecure). */
  insecure: boolean;
  credentials: Credentials | undefined;
  timeoutMs: number;
  signal: AbortSignal;
  log: Logger;
  /** Where tokens are kept across runs (the cache's oci-tokens.json); memory only when undefined. */
  tokenFile?: string;
}

export interface Manifest {
  digest: string;
  mediaType: string;
  body: Buffer;
  json: ManifestJson;
}

export interface Descriptor {
  mediaType: string;
  artifactType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export interface ManifestJson {
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}


const integrityError = (what: string, expected: string, actual: string) =>
  new DeployError('verification', `${what} does not match its digest: expected ${expected}, got sha256:${actual}; nothing was deployed`, {
    hint: 'the registry (or something between it and this host) sent other bytes than the ones it named; if it persists, push the artifact again',
  });

export class RegistryClient {
  private readonly dispatcher: Dispatcher;
  private readonly origin: string;
  private readonly scope: string;
  private readonly tokens: TokenStore;

  constructor(
    private readonly access: RegistryAccess,
    private readonly repository: string,
  ) {
    this.origin = `${access.insecure ? 'http' : 'https'}://${access.registry}`;
    this.scope = `repository:${repository}:pull`;
    this.tokens = new TokenStore(this.origin, this.scope, access.credentials?.user ?? '', access.tokenFile);
    this.dispatcher = new Agent({ connectTimeout: access.timeoutMs, headersTimeout: access.timeoutMs, bodyTimeout: access.timeoutMs });
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }

  private describe(reference: string): string {
    return `${this.access.registry}/${this.repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  }

  /** The manifest's digest by one HEAD (no body, no pull counted on Docker Hub); undefined when the registry does not say it. */
  async manifestDigest(reference: string): Promise<string | undefined> {
    const response = await this.send('HEAD', `/v2/${this.repository}/manifests/${reference}`, { accept: acceptManifests }, this.describe(reference));
    await response.body.dump();
    this.requireSuccess(response, this.describe(reference));
    const digest = response.headers['docker-content-digest'];
    return typeof digest === 'string' && digestPattern.test(digest) ? digest : undefined;
  }

  /** The manifest, checked against `expectedDigest` (or the one the registry names) while it streams. */
  async manifest(reference: string, expectedDigest?: string): Promise<Manifest> {
    return (await this.readManifest(reference, expectedDigest, false))!;
  }

  private async readManifest(reference: string, expectedDigest: string | undefined, absentIsUndefined: boolean): Promise<Manifest | undefined> {
    const what = `manifest ${this.describe(reference)}`;
    const response = await this.send('GET', `/v2/${this.repository}/manifests/${reference}`, { accept: acceptManifests }, this.describe(reference));
    if (response.statusCode === 404 && absentIsUndefined) {
      await response.body.dump().catch(() => undefined);
      return undefined;
    }
    if (response.statusCode !== 200) {
      await response.body.dump().catch(() => undefined);
      this.requireSuccess(response, this.describe(reference));
    }
    const declared = response.headers['content-length'];
    if (declared !== undefined && Number(declared) > largestManifest) {
      await response.body.dump().catch(() => undefined);
      throw fetchError(`${what} is ${declared} bytes; a manifest is at most ${largestManifest}`);
    }
    const body = await readBounded(response.body, largestManifest, () => fetchError(`${what} is larger than ${largestManifest} bytes`));
    const actual = createHash('sha256').update(body).digest('hex');
    const named = response.headers['docker-content-digest'];
    const expected = expectedDigest ?? (reference.startsWith('sha256:') ? reference : typeof named === 'string' ? named : undefined);
    if (expected !== undefined && expected !== `sha256:${actual}`) throw integrityError(what, expected, actual);
    let json: ManifestJson;
    try {
      json = JSON.parse(body.toString('utf8')) as ManifestJson;
    } catch (error) {
      throw fetchError(`${what} is not JSON (${messageOf(error)})`);
    }
    const contentType = String(response.headers['content-type'] ?? '').split(';')[0]!.trim();
    return { digest: `sha256:${actual}`, mediaType: json.mediaType ?? contentType, body, json };
  }

  /**
   * The repository's tags, page after page as the registry links them (`Link: <…>; rel="next"`),
   * at most `mostTags` in at most `mostPages`: a registry that links pages forever is refused.
   */
  async tags(mostTags = 100_000, mostPages = 1000): Promise<string[]> {
    const what = `the tags of ${this.access.registry}/${this.repository}`;
    const tags: string[] = [];
    let path: string | undefined = `/v2/${this.repository}/tags/list?n=1000`;
    const visited = new Set([path]);
    while (path !== undefined) {
      const response = await this.send('GET', path, { accept: 'application/json' }, what);
      if (response.statusCode !== 200) await response.body.dump().catch(() => undefined);
      this.requireSuccess(response, what);
      const body = await readBounded(response.body, largestManifest, () => fetchError(`${what}: a page is larger than ${largestManifest} bytes`));
      let page: { tags?: unknown };
      try {
        page = JSON.parse(body.toString('utf8')) as { tags?: unknown };
      } catch {
        throw fetchError(`${what}: the registry's answer is not JSON`);
      }
      if (Array.isArray(page.tags)) tags.push(...page.tags.filter((tag): tag is string => typeof tag === 'string'));
      if (tags.length > mostTags) throw fetchError(`${what}: more than ${mostTags} tags`);
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(response.headers.link ?? ''))?.[1];
      const next = link === undefined ? undefined : new URL(link, this.origin);
      // Only a path on this registry is followed (a Link elsewhere is not), and each once: a
      // registry that links back to a page it sent, empty or not, is refused, not followed forever.
      path = next?.origin === this.origin ? next.pathname + next.search : undefined;
      if (path !== undefined && visited.has(path)) throw fetchError(`${what}: the registry links back to a page it already sent (${path})`);
      if (path !== undefined) visited.add(path);
      if (visited.size > mostPages) throw fetchError(`${what}: more than ${mostPages} pages of tags`);
    }
    return tags;
  }

  /** The manifest under `reference`, or undefined when the registry has none (404): a signature tag, say. */
  manifestIfPresent(reference: string): Promise<Manifest | undefined> {
    return this.readManifest(reference, undefined, true);
  }

  /**
   * The manifests whose subject is `digest` (OCI 1.1 referrers): from the referrers API, or,
   * where the registry has none (404, as distribution 2.x), from the fallback tag `sha256-<hex>`
   * whose index cosign and oras keep up to date. The list is not digest-addressed: each manifest
   * it names is read by its digest and checked.
   */
  async referrers(digest: string): Promise<Descriptor[]> {
    const what = `referrers of ${this.describe(digest)}`;
    const response = await this.send('GET', `/v2/${this.repository}/referrers/${digest}`, { accept: manifestMediaTypes.ociIndex }, what);
    if (response.statusCode === 404) {
      await response.body.dump().catch(() => undefined);
      const index = await this.manifestIfPresent(digest.replace(':', '-'));
      return (index?.json.manifests ?? []).filter((entry) => typeof entry?.digest === 'string' && digestPattern.test(entry.digest));
    }
    if (response.statusCode !== 200) {
      await response.body.dump().catch(() => undefined);
      this.requireSuccess(response, what);
    }
    const body = await readBounded(response.body, largestManifest, () => fetchError(`${what}: the list is larger than ${largestManifest} bytes`));
    try {
      const manifests = (JSON.parse(body.toString('utf8')) as ManifestJson).manifests;
      if (!Array.isArray(manifests)) throw new Error('no "manifests" list');
      return manifests.filter((entry) => typeof entry?.digest === 'string' && digestPattern.test(entry.digest));
    } catch (error) {
      throw fetchError(`${what}: the registry answered with something that is not an image index (${messageOf(error)})`);
    }
  }

  /** A small blob read into memory, checked against its digest: a signature's payload, say. */
  async blobBytes(descriptor: Descriptor, maxBytes: number): Promise<Buffer> {
    const what = this.blobName(descriptor);
    if (descriptor.size > maxBytes) throw fetchError(`${what} is ${descriptor.size} bytes, more than the ${maxBytes} expected of it`);
    const response = await this.blobResponse(descriptor, what);
    const body = await readBounded(response.body, maxBytes, () => fetchError(`${what} is larger than ${maxBytes} bytes`));
    const actual = createHash('sha256').update(body).digest('hex');
    if (`sha256:${actual}` !== descriptor.digest) throw integrityError(what, descriptor.digest, actual);
    return body;
  }

  /**
   * Downloads the blob into `path`, hashing it as it arrives; refused when its bytes do not match
   * its digest, or when it is larger than declared or than `maxBytes`.
   */
  async downloadBlob(descriptor: Descriptor, path: string, maxBytes: number, progress: ProgressSink | undefined): Promise<void> {
    const what = this.blobName(descriptor);
    const tooLarge = (bytes: number) => fetchError(`${what} is ${bytes} bytes, larger than max-download-size = ${maxBytes}`, { hint: 'raise max-download-size if the artifact is genuine' });
    // The manifest's word first: nothing is asked of a blob declared too large.
    if (descriptor.size > maxBytes) throw tooLarge(descriptor.size);
    const response = await this.blobResponse(descriptor, what);
    const declared = response.headers['content-length'];
    if (declared !== undefined && Number(declared) > maxBytes) {
      await response.body.dump().catch(() => undefined);
      throw tooLarge(Number(declared));
    }
    const hash = createHash('sha256');
    let bytes = 0;
    const limit = Math.min(maxBytes, descriptor.size);
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        if (bytes > limit) {
          callback(fetchError(`${what} sent more than its ${descriptor.size} bytes`));
          return;
        }
        hash.update(chunk);
        progress?.advance(chunk.length);
        callback(null, chunk);
      },
    });
    try {
      const file = await open(path, createNewFileFlags, 0o600);
      await pipeline(response.body, counted, file.createWriteStream());
    } catch (error) {
      if (error instanceof DeployError) throw error;
      throw noSpaceError(error) ?? fetchError(`${what} could not be downloaded (${messageOf(error)})`);
    }
    if (bytes !== descriptor.size) throw fetchError(`${what} ended after ${bytes} of its ${descriptor.size} bytes`);
    const actual = hash.digest('hex');
    if (`sha256:${actual}` !== descriptor.digest) throw integrityError(what, descriptor.digest, actual);
  }

  /** How messages name a blob; only sha256 digests are taken (the only ones hashed here). */
  private blobName(descriptor: Descriptor): string {
    const what = `blob ${descriptor.digest} of ${this.access.registry}/${this.repository}`;
    if (!digestPattern.test(descriptor.digest)) throw fetchError(`${what}: only sha256 digests are taken`);
    return what;
  }

  /**
   * The blob's successful response, following redirects (to object storage) with the registry's
   * Authorization only back to the registry's own origin.
   */
  private async blobResponse(descriptor: Descriptor, what: string): Promise<Dispatcher.ResponseData> {
    let url = `${this.origin}/v2/${this.repository}/blobs/${descriptor.digest}`;
    let response = await this.send('GET', `/v2/${this.repository}/blobs/${descriptor.digest}`, {}, what);
    for (let redirects = 0; response.statusCode >= 300 && response.statusCode < 400; redirects++) {
      await response.body.dump().catch(() => undefined);
      const location = response.headers.location;
      if (typeof location !== 'string' || redirects >= mostRedirects) throw fetchError(`${what}: the registry redirected ${redirects >= mostRedirects ? 'too many times' : 'without a Location'}`);
      const target = new URL(location, url);
      url = target.toString();
      if (target.protocol !== 'https:' && !(target.protocol === 'http:' && this.access.insecure)) {
        throw fetchError(`${what}: the registry redirected to ${target.protocol}// (only https:// is followed${this.access.insecure ? ', or http:// with oci-insecure' : ''})`);
      }
      this.access.log.debug(`${what}: redirected to ${target.origin}`);
      response = await this.raw('GET', url, {}, target.origin === this.origin ? this.cachedAuthorization() : undefined);
    }
    if (response.statusCode < 200 || response.statusCode >= 300) await response.body.dump().catch(() => undefined);
    this.requireSuccess(response, what);
    return response;
  }

  private requireSuccess(response: Dispatcher.ResponseData, what: string): void {
    const status = response.statusCode;
    if (status >= 200 && status < 300) return;
    if (status === 404) throw fetchError(`${what}: the registry has no such manifest or blob (404)`, { hint: 'check the repository, the tag or digest, and that the artifact was pushed' });
    if (status === 401 || status === 403) {
      throw fetchError(`${what}: the registry refused access (${status})${this.access.credentials ? ' with the credentials of oci-credentials' : ' to an anonymous pull'}`, {
        hint: this.access.credentials ? 'check the user, password or token in oci-credentials' : 'set oci-credentials to a Docker config.json with a login for this registry',
      });
    }
    if (status === 429) throw fetchError(`${what}: the registry is rate-limiting this host (429)`, { hint: 'check less often, or log in (oci-credentials) for a higher limit' });
    throw fetchError(`${what}: the registry answered ${status}`);
  }

  /** A Bearer token kept from earlier (this process, or an earlier run of -f), or Basic credentials where the registry wants them. */
  private cachedAuthorization(): string | undefined {
    const stored = this.tokens.get();
    if (!stored) return undefined;
    return 'bearer' in stored ? `Bearer ${stored.bearer}` : this.basic();
  }

  private basic(): string | undefined {
    const credentials = this.access.credentials;
    return credentials ? `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}` : undefined;
  }

  /** A request, answering a 401's challenge once (a token, or Basic credentials). */
  private async send(method: 'GET' | 'HEAD', path: string, headers: Record<string, string>, what: string): Promise<Dispatcher.ResponseData> {
    const url = `${this.origin}${path}`;
    const response = await this.raw(method, url, headers, this.cachedAuthorization());
    if (response.statusCode !== 401) return response;
    const challenge = parseChallenge(response.headers['www-authenticate']);
    await response.body.dump().catch(() => undefined);
    const authorization = await this.answer(challenge, what);
    if (authorization === undefined) return this.raw(method, url, headers, undefined);
    return this.raw(method, url, headers, authorization);
  }

  private async raw(method: 'GET' | 'HEAD', url: string, headers: Record<string, string>, authorization: string | undefined): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, { method, headers: { ...headers, ...(authorization ? { authorization } : {}), 'user-agent': 'repo-deploy' }, dispatcher: this.dispatcher, signal: this.access.signal });
    } catch (error) {
      throw fetchError(`cannot reach the registry ${this.access.registry} (${messageOf(error)})`, { hint: this.access.insecure ? 'is the registry up?' : 'is the registry up, and does it serve https? (oci-insecure = yes for a plain-HTTP registry on a private network)' });
    }
  }

  /** The Authorization a challenge asks for, cached for its lifetime; undefined when there is nothing to answer with. */
  private async answer(challenge: Challenge | undefined, what: string): Promise<string | undefined> {
    const credentials = this.access.credentials;
    const basic = this.basic();
    if (!challenge || challenge.scheme !== 'bearer') {
      if (!basic) throw fetchError(`${what}: the registry asks for credentials`, { hint: 'set oci-credentials to a Docker config.json with a login for this registry' });
      // Sent from the first request on, from now on: an idle check is then one HEAD, not a 401 and a HEAD.
      await this.tokens.set({ basic: true });
      return basic;
    }
    const realm = challenge.parameters.realm;
    if (!realm) throw fetchError(`${what}: the registry's token challenge names no realm`);
    const tokenUrl = new URL(realm);
    if (tokenUrl.protocol !== 'https:' && !(tokenUrl.protocol === 'http:' && this.access.insecure)) {
      throw fetchError(`${what}: the registry's token service ${tokenUrl.origin} is not https://`, { hint: 'oci-insecure = yes allows plain HTTP on a private network' });
    }
    if (challenge.parameters.service) tokenUrl.searchParams.set('service', challenge.parameters.service);
    tokenUrl.searchParams.set('scope', challenge.parameters.scope ?? this.scope);
    let response: Dispatcher.ResponseData;
    try {
      response = await request(tokenUrl, { method: 'GET', headers: { ...(basic ? { authorization: basic } : {}), 'user-agent': 'repo-deploy' }, dispatcher: this.dispatcher, signal: this.access.signal });
    } catch (error) {
      throw fetchError(`${what}: cannot reach the registry's token service ${tokenUrl.origin} (${messageOf(error)})`);
    }
    if (response.statusCode !== 200) {
      await response.body.dump().catch(() => undefined);
      throw fetchError(`${what}: the registry's token service refused ${credentials ? 'the credentials of oci-credentials' : 'an anonymous token'} (${response.statusCode})`, {
        hint: credentials ? 'check the login in oci-credentials' : 'set oci-credentials to a Docker config.json with a login for this registry',
      });
    }
    const body = await readBounded(response.body, largestTokenResponse, () => fetchError(`${what}: the token service's answer is larger than ${largestTokenResponse} bytes`));
    let answer: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      answer = JSON.parse(body.toString('utf8')) as typeof answer;
    } catch {
      throw fetchError(`${what}: the token service's answer is not JSON`);
    }
    const token = typeof answer.token === 'string' ? answer.token : typeof answer.access_token === 'string' ? answer.access_token : undefined;
    if (!token) throw fetchError(`${what}: the token service's answer holds no token`);
    const lifetimeSeconds = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 60;
    await this.tokens.set({ bearer: token }, lifetimeSeconds);
    return `Bearer ${token}`;
  }
}

/** A body read whole, refused past `limit` bytes. */
async function readBounded(body: AsyncIterable<Buffer>, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
