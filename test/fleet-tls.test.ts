// The fleet's Redis over TLS with a private CA and client certificates (issue 29 item 10): a real
// redis-server with tls-port and tls-auth-clients, certificates made by openssl. The agent trusts
// only what fleet-tls-ca names, presents fleet-tls-cert, and says plainly why a handshake failed.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { makeSandbox, runCli } from './helpers/cli.js';
import { freePort } from './helpers/git-servers.js';
import { startHttpServer } from './helpers/http-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { zipTree } from './helpers/zips.js';

const run = promisify(execFile);

/** A CA, and a certificate it signed for `name` (with `san`, e.g. IP:127.0.0.1). */
async function issue(directory: string, name: string, san?: string): Promise<{ cert: string; key: string }> {
  const key = join(directory, `${name}.key`);
  const cert = join(directory, `${name}.pem`);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', key, '-out', `${cert}.csr`]);
  const extensions = join(directory, `${name}.ext`);
  await run('sh', ['-c', `printf '%s\\n' "${san ? `subjectAltName=${san}` : 'basicConstraints=CA:FALSE'}" > "${extensions}"`]);
  await run('openssl', ['x509', '-req', '-in', `${cert}.csr`, '-CA', join(directory, 'ca.pem'), '-CAkey', join(directory, 'ca.key'), '-CAcreateserial', '-days', '1', '-extfile', extensions, '-out', cert]);
  return { cert, key };
}

async function tlsRedis(t: TestContext, directory: string): Promise<{ port: number; ca: string; client: { cert: string; key: string } }> {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=test-fleet-ca', '-keyout', join(directory, 'ca.key'), '-out', join(directory, 'ca.pem')]);
  const server = await issue(directory, 'redis-server', 'IP:127.0.0.1');
  const client = await issue(directory, 'web-01');
  const port = await freePort();
  const child = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', server.cert, '--tls-key-file', server.key,
    '--tls-ca-cert-file', join(directory, 'ca.pem'), '--tls-auth-clients', 'yes', '--requirepass', 'tls-secret', '--save', '', '--appendonly', 'no', '--dir', directory], { stdio: 'ignore' });
  t.after(() => {
    if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
  });
  for (let tries = 0; ; tries++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' }, () => (socket.destroy(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (up) break;
    assert.ok(tries < 200, 'redis-server with TLS did not start');
    await sleep(25);
  }
  return { port, ca: join(directory, 'ca.pem'), client };
}

test('a fleet on rediss:// with a private CA and client certificates: fleet-tls-ca, -cert and -key connect; without them the handshake failure is named; half a setting is refused', async (t) => {
  const root = await temporaryDirectory(t);
  const redis = await tlsRedis(t, root);
  const origin = await startHttpServer(t);
  await zipTree({ 'index.html': 'version 1\n' }, join(root, 'app.zip'), root);
  origin.route('/app.zip', { kind: 'file', path: join(root, 'app.zip') });
  const url = `rediss://:tls-secret@127.0.0.1:${redis.port}/0`;
  const fleetSettings = `fleet-redis = ${url}\nfleet-name = web\nhost-id = web-01\n`;
  const sandbox = await makeSandbox(join(root, 'web-01'), `${fleetSettings}fleet-tls-ca = ${redis.ca}\nfleet-tls-cert = ${redis.client.cert}\nfleet-tls-key = ${redis.client.key}\n`);
  const args = sandbox.args(origin.url('/app.zip'));

  const deployed = await runCli(args);
  assert.equal(deployed.code, 0, deployed.stderr);
  assert.match(deployed.stderr, /revision [0-9a-f]{12} is new to the fleet/);
  assert.equal(await sandbox.liveFile('index.html'), 'version 1\n');
  const status = await runCli(['fleet', 'status', '-c', sandbox.config]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /web-01 +idle/);
  assert.doesNotMatch(status.stdout + status.stderr + deployed.stderr, /tls-secret/, 'the password is shown nowhere');

  // Without the CA: the server's certificate is not trusted, and the agent says so in one line.
  const untrusted = await makeSandbox(join(root, 'no-ca'), fleetSettings.replace('web-01', 'web-02'));
  const noCa = await runCli(untrusted.args(origin.url('/app.zip')));
  assert.equal(noCa.code, 3, noCa.stderr);
  assert.match(noCa.stderr, /cannot be reached \(TLS failed: .*(self[- ]signed|unable to get local issuer)/i);
  // With the CA but no client certificate: the server ends the handshake.
  const anonymous = await makeSandbox(join(root, 'no-cert'), `${fleetSettings.replace('web-01', 'web-03')}fleet-tls-ca = ${redis.ca}\n`);
  const noCert = await runCli(anonymous.args(origin.url('/app.zip')));
  assert.equal(noCert.code, 3, noCert.stderr);
  assert.match(noCert.stderr, /the fleet's Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0 cannot be reached/);
  await assert.rejects(anonymous.liveFile('index.html'), /ENOENT/);

  // Half a setting, or TLS files with a plain redis:// URL: refused before anything happens.
  const half = await runCli([...anonymous.args(origin.url('/app.zip'))], { REPO_DEPLOY_FLEET_TLS_CERT: redis.client.cert });
  assert.equal(half.code, 2, half.stderr);
  assert.match(half.stderr, /fleet-tls-cert and fleet-tls-key go together, but only fleet-tls-cert is set/);
  const plain = await runCli([...anonymous.args(origin.url('/app.zip'))], { REPO_DEPLOY_FLEET_REDIS: url.replace('rediss://', 'redis://') });
  assert.equal(plain.code, 2, plain.stderr);
  assert.match(plain.stderr, /fleet-tls-ca is set, but fleet-redis is not a rediss:\/\/ \(TLS\) URL/);
  // A CA "file" that is a device or a FIFO: refused at once, never read forever.
  await run('mkfifo', [join(root, 'ca.fifo')]);
  for (const path of ['/dev/zero', join(root, 'ca.fifo')]) {
    const odd = await runCli([...anonymous.args(origin.url('/app.zip'))], { REPO_DEPLOY_FLEET_TLS_CA: path });
    assert.equal(odd.code, 2, odd.stderr);
    assert.match(odd.stderr, new RegExp(`cannot read the fleet-tls-ca file ${path.replace(/[.]/g, '\\.')}: it is not a regular file`));
  }
  const missing = await runCli([...anonymous.args(origin.url('/app.zip'))], { REPO_DEPLOY_FLEET_TLS_CA: join(root, 'nope.pem') });
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /the fleet-tls-ca file \S+nope\.pem does not exist/);
});
