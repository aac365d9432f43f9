// The daemon's resident memory while peers without the webhook secret send POST /check bodies of
// 1 MiB − 1 byte, all at once: a real daemon (http-listen, webhook-secret) against a local zip,
// N connections from this process, VmRSS read from /proc every 50 ms. Also how long /healthz
// takes to answer during the flood, and the daemon's WARN lines it cost.
//
//   node --import tsx bench/webhook-flood.ts 300 1500
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/git-servers.js';
import { zipTree } from '../test/helpers/zips.js';

// REPO_DEPLOY_CLI: another build to compare with (e.g. main's).
const cli = process.env.REPO_DEPLOY_CLI ?? resolve(fileURLToPath(import.meta.url), '../../dist/cli.js');
const bodyBytes = 1024 * 1024 - 1;

async function residentMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

/** One peer: headers then the whole body, no credential; resolves when the server answers or closes. */
function flood(port: number, body: Buffer): Promise<string> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => done(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 'closed'));
    socket.write(`POST /check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n\r\n`);
    socket.end(body);
  });
}

/** How long /healthz takes to answer, on a connection of its own (a refused one counts as a failure). */
function healthzMs(port: number): Promise<number | string> {
  const started = performance.now();
  return new Promise((done) => {
    const request = get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 30_000 }, (response) => {
      response.resume();
      response.on('end', () => done(Math.round(performance.now() - started)));
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (error) => done(`failed (${error.message})`));
  });
}

const asMs = (value: number | string) => (typeof value === 'number' ? `${value} ms` : value);

async function measure(connections: number): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'repo-deploy-webhook-flood-'));
  try {
    await mkdir(join(root, 'none'));
    await zipTree({ 'index.html': 'version 1\n' }, join(root, 'app.zip'), root);
    await writeFile(join(root, 'secret'), 'a-webhook-secret-of-some-length-0123456789\n', { mode: 0o600 });
    const port = await freePort();
    await writeFile(join(root, 'daemon.cfg'), `schedule = 0 0 1 1 *\nhttp-listen = 127.0.0.1:${port}\nwebhook-secret = ${join(root, 'secret')}\n`);
    const args = [cli, '-c', join(root, 'daemon.cfg'), '-r', join(root, 'app.zip'), '-l', join(root, 'www', 'current'), '--cache', join(root, 'cache'), '--pre-hooks', join(root, 'none'), '--post-hooks', join(root, 'none')];
    const daemon = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    daemon.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const exited = new Promise((done) => daemon.once('exit', done));
    while (!/deployed revision|up to date/.test(log)) {
      if (daemon.exitCode !== null) throw new Error(`the daemon exited: ${log}`);
      await sleep(50);
    }
    const pid = daemon.pid as number;
    const before = await residentMiB(pid);
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await residentMiB(pid));
        await sleep(50);
      }
    })();
    const body = Buffer.alloc(bodyBytes, 'x');
    const warnsBefore = log.split('\n').filter((line) => line.includes('WARN')).length;
    const started = performance.now();
    const floods = Array.from({ length: connections }, () => flood(port, body));
    const duringHealthz = await healthzMs(port);
    const outcomes = await Promise.all(floods);
    const afterHealthz = await healthzMs(port);
    const seconds = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;
    await sleep(2000);
    const after = await residentMiB(pid);
    const counts: Record<string, number> = {};
    for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
    const warns = log.split('\n').filter((line) => line.includes('WARN')).length - warnsBefore;
    console.log(
      `${connections} peers x ${bodyBytes} bytes, no credential: RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB, ${after.toFixed(0)} MiB 2 s after;` +
        ` all answered or closed in ${seconds.toFixed(1)} s (${Object.entries(counts).map(([k, v]) => `${k}: ${v}`).join(', ')}); /healthz during the flood: ${asMs(duringHealthz)}, after it: ${asMs(afterHealthz)}; WARN lines: ${warns}`,
    );
    daemon.kill('SIGTERM');
    await exited;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

for (const connections of process.argv.slice(2).map(Number)) await measure(connections);
