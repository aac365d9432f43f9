// What stands in front of a test registry to make it lie or behave as a hosted one does:
// - a front that passes requests on to the registry and, by its mode, changes one byte of every
//   blob or manifest it sends (same length: only a digest check can tell), or answers blob
//   requests with a redirect to "object storage", a second server that serves the blob and
//   records the Authorization header it was sent, or serves the tag list in pages of 100 linked
//   by `Link: <…>; rel="next"`, as hosted registries do (docker-registry 2.8 sends one page), or
//   sends half of a blob and then nothing (for a kill -9 in the middle of a download), or answers
//   the referrers API (OCI 1.1, which docker-registry 2.8 lacks) from a list the test keeps;
// - a token service for the registry's Bearer flow (docker-registry's `auth: token`), signing
//   JWTs with a key whose certificate the registry trusts, counting the tokens it gives.
// Each is a real HTTP server on loopback, stopped when the test ends.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { listenOnLoopback } from './listen.js';
import type { TestRegistry } from './oci-registry.js';

export type FrontMode = 'pass' | 'flip-blob-byte' | 'flip-manifest-byte' | 'redirect-blobs' | 'paginate-tags' | 'stall-blob-halfway' | 'referrers';

export interface RegistryFront {
  host: string;
  /** What object storage was sent as Authorization, per blob request it served (redirect-blobs). */
  storageAuthorizations: Array<string | undefined>;
  mode: FrontMode;
  /** Every request the front passed on or answered: method and path, and the Basic user that sent it ("-": none). */
  requests: string[];
  /** stall-blob-halfway: a blob was half sent and is held there. */
  stalled?: boolean;
  /** referrers: the referrers API (OCI 1.1) docker-registry 2.8 lacks, answered from this list per subject digest. */
  referrers: Map<string, object[]>;
}

async function bodyOf(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function forward(target: string, request: IncomingMessage, path: string, headers: Record<string, string>): Promise<Response> {
  const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await bodyOf(request);
  return fetch(`http://${target}${path}`, { method: request.method, headers, body, redirect: 'manual' });
}

function relayHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (typeof value === 'string' && name !== 'host' && name !== 'connection') headers[name] = value;
  return headers;
}

const flipped = (data: Buffer, at: number) => {
  const copy = Buffer.from(data);
  copy[at] = copy[at]! ^ 0x20;
  return copy;
};

async function answer(response: ServerResponse, upstream: Response, body: Buffer | undefined): Promise<void> {
  const headers: Record<string, string> = {};
  upstream.headers.forEach((value, name) => {
    if (name !== 'content-length' && name !== 'transfer-encoding' && name !== 'connection' && name !== 'content-encoding') headers[name] = value;
  });
  if (body !== undefined) headers['content-length'] = String(body.length);
  else if (upstream.headers.get('content-length')) headers['content-length'] = upstream.headers.get('content-length')!;
  response.writeHead(upstream.status, headers);
  response.end(body);
}

export async function startRegistryFront(t: Pick<TestContext, 'after'>, registry: TestRegistry, mode: FrontMode): Promise<RegistryFront> {
  const registryHost = registry.host;
  // Object storage reads the registry with credentials of its own (as a presigned URL would carry).
  const storageCredentials = registry.login ? `Basic ${Buffer.from(`${registry.login.user}:${registry.login.password}`).toString('base64')}` : '';
  const front: RegistryFront = { host: '', storageAuthorizations: [], mode, requests: [], referrers: new Map() };
  // Object storage: serves /BLOB-PATH by asking the registry itself, and notes what it was sent.
  const storage = createServer((request, response) => {
    front.storageAuthorizations.push(request.headers.authorization);
    void (async () => {
      const upstream = await fetch(`http://${registryHost}${request.url}`, { headers: storageCredentials ? { authorization: storageCredentials } : {} });
      await answer(response, upstream, Buffer.from(await upstream.arrayBuffer()));
    })().catch(() => response.destroy());
  });
  const storagePort = await listenOnLoopback(t, storage);
  const server = createServer((request, response) => {
    void (async () => {
      const path = request.url ?? '/';
      const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      front.requests.push(`${request.method} ${path} ${basic ? Buffer.from(basic, 'base64').toString('utf8').split(':')[0] : '-'}`);
      const headers = relayHeaders(request);
      const isBlob = /\/blobs\/sha256:/.test(path) && request.method === 'GET';
      const isManifest = /\/manifests\//.test(path) && request.method === 'GET';
      const tagList = /^\/v2\/(.+)\/tags\/list(\?.*)?$/.exec(path);
      if (front.mode === 'paginate-tags' && tagList && request.method === 'GET') {
        const upstream = await forward(registryHost, request, `/v2/${tagList[1]}/tags/list`, headers);
        const all = ((await upstream.json()) as { tags?: string[] }).tags ?? [];
        const last = new URLSearchParams(tagList[2] ?? '').get('last');
        const start = last === null ? 0 : all.indexOf(last) + 1;
        const page = all.slice(start, start + 100);
        const more = start + 100 < all.length;
        response.writeHead(200, { 'content-type': 'application/json', ...(more ? { link: `</v2/${tagList[1]}/tags/list?n=100&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"` } : {}) });
        response.end(JSON.stringify({ name: tagList[1], tags: page }));
        return;
      }
      const referrers = /^\/v2\/.+\/referrers\/(sha256:[0-9a-f]{64})(\?.*)?$/.exec(path);
      if (front.mode === 'referrers' && referrers && request.method === 'GET') {
        response.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' });
        response.end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: front.referrers.get(referrers[1]!) ?? [] }));
        return;
      }
      if (front.mode === 'redirect-blobs' && isBlob) {
        response.writeHead(307, { location: `http://127.0.0.1:${storagePort}${path}` });
        response.end();
        return;
      }
      const upstream = await forward(registryHost, request, path, headers);
      const body = request.method === 'HEAD' ? undefined : Buffer.from(await upstream.arrayBuffer());
      if (body && upstream.status === 200 && front.mode === 'stall-blob-halfway' && isBlob && body.length > 1024) {
        const headers: Record<string, string> = { 'content-length': String(body.length), 'content-type': 'application/octet-stream' };
        response.writeHead(200, headers);
        response.write(body.subarray(0, body.length / 2));
        front.stalled = true;
        return;
      }
      if (body && upstream.status === 200 && ((front.mode === 'flip-blob-byte' && isBlob) || (front.mode === 'flip-manifest-byte' && isManifest))) {
        await answer(response, upstream, flipped(body, Math.floor(body.length / 2)));
        return;
      }
      await answer(response, upstream, body);
    })().catch(() => response.destroy());
  });
  front.host = `127.0.0.1:${await listenOnLoopback(t, server)}`;
  return front;
}

export interface TokenService {
  realm: string;
  /** The certificate the registry's `rootcertbundle` names. */
  certificatePath: string;
  issuer: string;
  service: string;
  /** Tokens given, by scope. */
  issued: string[];
  /** A token for the test's own writer: push and pull on `repository`. */
  tokenFor(repository: string, actions: string[]): string;
}

/** A token service; with `login`, it gives tokens only for those Basic credentials. */
export async function startTokenService(t: Pick<TestContext, 'after'>, directory: string, { login, lifetimeSeconds = 300 }: { login?: { user: string; password: string }; lifetimeSeconds?: number } = {}): Promise<TokenService> {
  const keyPath = join(directory, 'token-key.pem');
  const certificatePath = join(directory, 'token-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certificatePath, '-days', '2', '-subj', '/CN=repo-deploy test token service'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyPath));
  const certificate = new X509Certificate(readFileSync(certificatePath));
  const issuer = 'repo-deploy-test-issuer';
  const service = 'repo-deploy-test-registry';
  const encode = (value: object | Buffer) => (Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value))).toString('base64url');
  const jwt = (subject: string, access: Array<{ type: string; name: string; actions: string[] }>) => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certificate.raw.toString('base64')] };
    const claims = { iss: issuer, sub: subject, aud: service, exp: now + lifetimeSeconds, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${encode(header)}.${encode(claims)}`;
    return `${signingInput}.${encode(sign('sha256', Buffer.from(signingInput), key))}`;
  };
  const tokens: TokenService = {
    realm: '',
    certificatePath,
    issuer,
    service,
    issued: [],
    tokenFor: (repository, actions) => jwt('test-writer', [{ type: 'repository', name: repository, actions }]),
  };
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://token');
    if (login) {
      const expected = `Basic ${Buffer.from(`${login.user}:${login.password}`).toString('base64')}`;
      if (request.headers.authorization !== expected) {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end('{"details":"bad credentials"}');
        return;
      }
    }
    const scope = url.searchParams.get('scope') ?? '';
    tokens.issued.push(scope);
    const [type, name, actions] = scope.split(':');
    const access = type && name ? [{ type, name, actions: (actions ?? '').split(',').filter((action) => action === 'pull') }] : [];
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ token: jwt(login?.user ?? 'anonymous', access), expires_in: lifetimeSeconds, issued_at: new Date().toISOString() }));
  });
  tokens.realm = `http://127.0.0.1:${await listenOnLoopback(t, server)}/token`;
  return tokens;
}
