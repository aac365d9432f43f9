// Real git servers on loopback, started and stopped by the test that uses them: git daemon
// (git://), smart HTTP (git http-backend behind a Node server, optionally with basic auth),
// sshd with generated keys, and a server that accepts connections and never answers.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { gunzipSync } from 'node:zlib';
import { createServer as createTcpServer, connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { listenOnLoopback } from './listen.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function waitForPort(port: number, host: string, child: ChildProcess, name: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before listening`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`${name} did not listen on ${host}:${port}`);
}

function stopChild(t: TestContext, child: ChildProcess): void {
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
}

/** git daemon serving every repository below `root` at git://127.0.0.1:PORT/<path>. */
export async function startGitDaemon(t: TestContext, root: string): Promise<{ url(path: string): string }> {
  const port = await freePort();
  const child = spawn('git', ['daemon', '--reuseaddr', `--base-path=${root}`, '--export-all', '--listen=127.0.0.1', `--port=${port}`, root], {
    stdio: 'ignore',
  });
  stopChild(t, child);
  await waitForPort(port, '127.0.0.1', child, 'git daemon');
  return { url: (path) => `git://127.0.0.1:${port}/${path}` };
}

export interface GitHttpServer {
  url(path: string, credentials?: string): string;
  requests: number;
  /** Requests that asked for a pack (protocol v2 "command=fetch" or v0 "want" lines). */
  packRequests: number;
  /** Every Authorization header this server was sent. */
  authorizations: string[];
}

export interface GitHttpOptions {
  auth?: { user: string; password: string };
  tls?: { key: string; cert: string };
}

/** A self-signed certificate for 127.0.0.1, made with openssl. */
export async function makeCertificate(directory: string): Promise<{ key: string; cert: string; certPath: string }> {
  await mkdir(directory, { recursive: true });
  const keyPath = join(directory, 'key.pem');
  const certPath = join(directory, 'cert.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath]);
  return { key: await readFile(keyPath, 'utf8'), cert: await readFile(certPath, 'utf8'), certPath };
}

/** Smart HTTP(S): git http-backend as a CGI behind a Node server; with `auth`, basic auth is required. */
export async function startGitHttpServer(t: TestContext, root: string, options: GitHttpOptions = {}): Promise<GitHttpServer> {
  const { auth } = options;
  const state = { requests: 0, packRequests: 0, authorizations: [] as string[] };
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    state.requests++;
    if (request.headers.authorization) state.authorizations.push(request.headers.authorization);
    if (auth) {
      const expected = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
      if (request.headers.authorization !== expected) {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end('unauthorised');
        return;
      }
    }
    const url = new URL(request.url ?? '/', 'http://localhost');
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: request.method ?? 'GET',
        CONTENT_TYPE: request.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: request.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(request.headers['git-protocol'] ?? ''),
        REMOTE_ADDR: '127.0.0.1',
        REMOTE_USER: auth?.user ?? '',
        ...(request.headers['content-length'] ? { CONTENT_LENGTH: request.headers['content-length'] } : {}),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const body: Buffer[] = [];
    request.on('data', (chunk: Buffer) => body.push(chunk));
    request.on('end', () => {
      let text = Buffer.concat(body);
      if (request.headers['content-encoding'] === 'gzip' && text.length) text = gunzipSync(text);
      if (/command=fetch|^[0-9a-f]{4}want /m.test(text.toString('latin1'))) state.packRequests++;
    });
    request.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let headersSent = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersSent) return void response.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      response.writeHead(status, headers);
      headersSent = true;
      response.write(head.subarray(end + 4));
    });
    child.stdout.on('end', () => response.end());
  };
  const server = options.tls ? createHttpsServer(options.tls, handler) : createHttpServer(handler);
  const port = await listenOnLoopback(t, server);
  return {
    url: (path, credentials) => `${options.tls ? 'https' : 'http'}://${credentials ? `${credentials}@` : ''}127.0.0.1:${port}/${path}`,
    get requests() {
      return state.requests;
    },
    get packRequests() {
      return state.packRequests;
    },
    authorizations: state.authorizations,
  };
}

export interface SshServer {
  host: string;
  port: number;
  clientKey: string;
  knownHosts: string;
  /** A known_hosts file that lists another key for this host. */
  wrongKnownHosts: string;
}

/** sshd on a loopback address with a generated host key, accepting one generated client key. */
export async function startSshd(t: TestContext, directory: string, host = '127.0.0.1', port?: number): Promise<SshServer> {
  await mkdir(directory, { recursive: true });
  await mkdir('/run/sshd', { recursive: true });
  const hostKey = join(directory, 'host_ed25519');
  const otherKey = join(directory, 'other_ed25519');
  const clientKey = join(directory, 'client_ed25519');
  for (const key of [hostKey, otherKey, clientKey]) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await writeFile(join(directory, 'authorized_keys'), await readFile(`${clientKey}.pub`));
  const listenPort = port ?? (await freePort(host));
  const config = join(directory, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${listenPort}`,
      `ListenAddress ${host}`,
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(directory, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      `PidFile ${join(directory, 'sshd.pid')}`,
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: 'ignore' });
  stopChild(t, child);
  await waitForPort(listenPort, host, child, 'sshd');
  const hostPattern = listenPort === 22 ? host : `[${host}]:${listenPort}`;
  const knownHosts = join(directory, 'known_hosts');
  const wrongKnownHosts = join(directory, 'wrong_known_hosts');
  await writeFile(knownHosts, `${hostPattern} ${(await readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')}\n`);
  await writeFile(wrongKnownHosts, `${hostPattern} ${(await readFile(`${otherKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')}\n`);
  return { host, port: listenPort, clientKey, knownHosts, wrongKnownHosts };
}

/** Accepts TCP connections and never says a word: a hung server. */
export async function startStalledServer(t: TestContext): Promise<number> {
  const server = createTcpServer((socket) => {
    socket.on('error', () => undefined);
  });
  return listenOnLoopback(t, server);
}
