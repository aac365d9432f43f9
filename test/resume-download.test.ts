// A download cut short (the connection cut half way, kill -9 mid-body) is resumed from its
// partial file with Range and If-Range (S3: Range and IfMatch): only the rest is sent, and what is
// deployed is byte for byte the archive a whole download gives (its sha256 is the revision). A
// changed archive, a server that ignores ranges, one that answers a range with other bytes and
// one that answers 416 each fall back to a whole download, never a splice; the live release is
// kept until a whole, verified archive is there.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeSandbox, runCli } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { etagOf } from './helpers/http-server.js';
import { kindsOfJunk } from './helpers/planted-junk.js';
import { smallDisk } from './helpers/small-disk.js';
import { s3AccessKey, startS3 } from './helpers/s3-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { setup, type Setup } from './helpers/zip-agent.js';
import { zipTree } from './helpers/zips.js';

// Whole downloads and their resumption: deltas (test/zip-delta.test.ts) would ask for the
// archive's end first, and fetch less than a whole download.
const wholeDownloads = 'delta = no\n';

/** A zip of about 1.5 MB that does not compress away: halves of it are real bytes. */
async function bigZip(root: string, name: string, version: string): Promise<{ path: string; bytes: Buffer; sha256: string }> {
  const path = await zipTree({ 'index.html': `version ${version}\n`, 'blob.txt': randomBytes(1_500_000).toString('base64') }, join(root, name), root);
  const bytes = await readFile(path);
  return { path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Version 1 live; the server's next answer is the first half of `next`, then the connection is cut. */
async function cutHalfWay(t: TestContext): Promise<{ s: Setup; next: Awaited<ReturnType<typeof bigZip>>; kept: number }> {
  const s = await setup(t, wholeDownloads);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const next = await bigZip(s.root, 'v2.zip', '2');
  s.server.route('/app.zip', { kind: 'truncated', path: next.path });
  const cut = await s.once();
  assert.equal(cut.code, 3, cut.stderr);
  // The server sent half; what reached the agent before the cut may be less (bytes in flight
  // when a connection is cut are lost), but all of what arrived is kept.
  const keptMatch = new RegExp(`(\\d+) of ${next.bytes.length} bytes of .* are kept; the next check asks for the rest only`).exec(cut.stderr);
  assert.ok(keptMatch, cut.stderr);
  const kept = Number(keptMatch[1]);
  assert.ok(kept > 0 && kept <= Math.floor(next.bytes.length / 2), cut.stderr);
  assert.match(cut.stderr, new RegExp(`the download is truncated \\(${kept} of ${next.bytes.length} bytes\\)`), 'every byte that arrived is kept');
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  return { s, next, kept };
}

const partialFiles = async (cache: string) => (await readdir(join(cache, 'partial')).catch(() => [] as string[])).sort();

/**
 * The archive `next` served again with ranges honoured; the next run must ask for the rest from
 * `offset` (undefined: for the whole archive), be sent only that, and deploy `next`.
 */
async function nextRunFrom(s: Setup, next: Awaited<ReturnType<typeof bigZip>>, offset: number | undefined, what = '') {
  s.server.route('/app.zip', { kind: 'file', path: next.path });
  s.server.resetCounters();
  const run = await s.once();
  assert.equal(run.code, 0, `${what}${run.stderr}`);
  assert.equal(s.server.requests[0]?.headers.range, offset === undefined ? undefined : `bytes=${offset}-`, what);
  assert.equal(s.server.bodyBytesSent, next.bytes.length - (offset ?? 0), `${what}only what is missing is sent`);
  assert.equal((await s.state()).current.revision, `sha256:${next.sha256}`, what);
  return run;
}

test('a download cut half way resumes with Range and If-Range: only the rest is sent, and what is deployed is the archive a whole download gives', async (t) => {
  const { s, next, kept } = await cutHalfWay(t);
  const resumed = await nextRunFrom(s, next, kept);
  assert.match(resumed.stderr, new RegExp(`resuming the download of .* at ${kept} of ${next.bytes.length} bytes`));
  const [request] = s.server.requests;
  assert.equal(request?.headers['if-range'], etagOf(next.bytes));
  assert.equal(request?.status, 206);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
  assert.deepEqual(await partialFiles(s.sandbox.cache), [], 'nothing is kept once whole');

  // The same archive downloaded whole by another agent gives the same release, file for file.
  const other = await makeSandbox(await temporaryDirectory(t));
  assert.equal((await runCli(other.args(s.remote))).code, 0);
  const manifestOf = async (live: string) => {
    const releases = join(live, '..', 'releases');
    const name = (await readdir(releases)).filter((entry) => entry.startsWith('.manifest-')).sort().at(-1)!;
    return JSON.parse(await readFile(join(releases, name), 'utf8'));
  };
  assert.deepEqual(await manifestOf(s.sandbox.live), await manifestOf(other.live));
});

test('the archive changed between the cut and the next check: If-Range no longer matches, the whole new archive is sent and deployed, never a splice', async (t) => {
  const { s } = await cutHalfWay(t);
  const third = await bigZip(s.root, 'v3.zip', '3');
  s.server.route('/app.zip', { kind: 'file', path: third.path });
  s.server.resetCounters();
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /changed since the download cut short at \d+ of \d+ bytes \(or the server does not resume\): downloading it whole/);
  assert.equal(s.server.requests[0]?.status, 200);
  assert.equal(s.server.bodyBytesSent, third.bytes.length);
  assert.equal((await s.state()).current.revision, `sha256:${third.sha256}`);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 3\n');
});

test('a server that ignores ranges, one that answers a range with other bytes, and one that answers 416: each falls back to a whole download of the archive', async (t) => {
  for (const answer of ['ignores ranges', 'other bytes', '416'] as const) {
    const { s, next } = await cutHalfWay(t);
    s.server.route('/app.zip', {
      kind: 'custom',
      respond(request, response) {
        const headers = { 'content-type': 'application/zip', etag: etagOf(next.bytes) };
        if (request.headers.range && answer === 'other bytes') {
          // "The rest", from the wrong offset: spliced on, it would make another archive.
          response.writeHead(206, { ...headers, 'content-range': `bytes 0-${next.bytes.length - 1}/${next.bytes.length}`, 'content-length': String(next.bytes.length) });
          response.end(next.bytes);
        } else if (request.headers.range && answer === '416') {
          response.writeHead(416, { 'content-range': `bytes */${next.bytes.length}` });
          response.end();
        } else {
          response.writeHead(200, { ...headers, 'content-length': String(next.bytes.length) });
          response.end(next.bytes);
        }
      },
    });
    s.server.resetCounters();
    const run = await s.once();
    assert.equal(run.code, 0, `${answer}: ${run.stderr}`);
    assert.equal((await s.state()).current.revision, `sha256:${next.sha256}`, answer);
    assert.equal(await s.sandbox.liveFile('index.html'), 'version 2\n');
    if (answer === 'ignores ranges') assert.equal(s.server.requests.length, 1);
    else {
      assert.match(run.stderr, /not the rest of the same archive: downloading it whole/, answer);
      assert.deepEqual([s.server.requests.length, s.server.requests[1]?.headers.range], [2, undefined], answer);
    }
  }
});

/** Version 1 live; an agent (-f, or the daemon) started while the server sends half of version 2 and then nothing, until that half is in the partial file. */
async function halfArrived(t: TestContext, daemon: boolean) {
  const s = await setup(t, wholeDownloads);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const next = await bigZip(s.root, 'v2.zip', '2');
  const half = Math.floor(next.bytes.length / 2);
  s.server.route('/app.zip', {
    kind: 'custom',
    respond(_request, response) {
      response.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(next.bytes.length), etag: etagOf(next.bytes) });
      response.write(next.bytes.subarray(0, half));
    },
  });
  const agent = daemon ? s.agent() : startAgent(t, s.sandbox.args(s.remote));
  const partDirectory = join(s.sandbox.cache, 'partial');
  const partSize = async () => {
    const part = (await partialFiles(s.sandbox.cache)).find((name) => name.endsWith('.zip.part'));
    return part ? (await stat(join(partDirectory, part))).size : 0;
  };
  while ((await partSize()) < half) await sleep(20);
  return { s, next, half, agent };
}

test('a daemon stopped with SIGTERM in the middle of a download keeps what arrived and says so; the next run asks for the rest', async (t) => {
  const { s, next, half, agent } = await halfArrived(t, true);
  agent.child.kill('SIGTERM');
  const stopped = await agent.done;
  assert.match(stopped.stderr, new RegExp(`${half} of ${next.bytes.length} bytes of .* are kept; the next check asks for the rest only`));
  await nextRunFrom(s, next, half);
});

test('an agent killed with -9 in the middle of a download: the next run asks for the rest from where the file ends', async (t) => {
  const { s, next, half, agent } = await halfArrived(t, false);
  agent.child.kill('SIGKILL');
  await agent.done;
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');

  await nextRunFrom(s, next, half);
});

test('S3: a download cut half way resumes with Range and IfMatch; an object replaced since (its rest sent with another ETag by a store that ignores IfMatch) is downloaded whole', async (t) => {
  const s3 = await startS3(t);
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, `s3-endpoint = ${s3.endpoint}\naws-access-key = ${s3AccessKey}\naws-secret-key = S3RVER\n${wholeDownloads}`);
  const remote = `s3://${s3.bucket}/app.zip`;
  const first = await bigZip(root, 'v1.zip', '1');
  await s3.upload('app.zip', first.bytes);
  const half = Math.floor(first.bytes.length / 2);
  s3.cutAfter(half);
  const cut = await runCli(sandbox.args(remote));
  assert.equal(cut.code, 3, cut.stderr);
  const keptMatch = new RegExp(`(\\d+) of ${first.bytes.length} bytes of .* are kept`).exec(cut.stderr);
  assert.ok(keptMatch, cut.stderr);
  const kept = Number(keptMatch[1]);
  assert.ok(kept > 0 && kept <= half, cut.stderr);

  s3.resetCounters();
  const resumed = await runCli(sandbox.args(remote));
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(s3.lastGet?.range, `bytes=${kept}-`);
  assert.match(String(s3.lastGet?.['if-match']), /^"[0-9a-f]+"$/);
  assert.equal(s3.bodyBytes, first.bytes.length - kept);
  assert.equal(JSON.parse(await readFile(join(sandbox.cache, 'state.json'), 'utf8')).current.revision, `sha256:${first.sha256}`);

  // Cut again, then the object is replaced: IfMatch fails (412), and the new object comes whole.
  const second = await bigZip(root, 'v2.zip', '2');
  await s3.upload('app.zip', second.bytes);
  s3.cutAfter(half);
  assert.equal((await runCli(sandbox.args(remote))).code, 3);
  const third = await bigZip(root, 'v3.zip', '3');
  await s3.upload('app.zip', third.bytes);
  const replaced = await runCli(sandbox.args(remote));
  assert.equal(replaced.code, 0, replaced.stderr);
  // S3 answers 412; s3rver ignores IfMatch and sends the new object's rest, whose ETag gives it away.
  assert.match(replaced.stderr, /(changed since the download cut short at \d+ of \d+ bytes|of ETag "[0-9a-f]+", not the rest of the same object): downloading it whole/);
  assert.equal(JSON.parse(await readFile(join(sandbox.cache, 'state.json'), 'utf8')).current.revision, `sha256:${third.sha256}`);
  assert.equal(await sandbox.liveFile('index.html'), 'version 3\n');
});

test('junk where a cut-short download is kept (a FIFO for its note, its part a link to a file outside, a note of another remote, an absurd size): each is removed, the download starts from zero, and nothing outside is touched', async (t) => {
  const s = await setup(t, wholeDownloads);
  await s.publish('1');
  assert.equal((await s.once()).code, 0);
  const directory = join(s.sandbox.cache, 'partial');
  const outside = join(s.root, 'outside.txt');
  await writeFile(outside, 'not the agent\'s\n');
  const junk = kindsOfJunk(outside, 'total');
  for (const [index, [what, plant]] of junk.entries()) {
    const next = await bigZip(s.root, `v${index + 2}.zip`, String(index + 2));
    s.server.route('/app.zip', { kind: 'truncated', path: next.path });
    assert.equal((await s.once()).code, 3, what);
    const names = await readdir(directory);
    const note = join(directory, names.find((name) => name.endsWith('.json'))!);
    await plant(note, note.replace(/\.json$/, '.zip.part'));
    await nextRunFrom(s, next, undefined, `${what}: `);
    assert.equal(await readFile(outside, 'utf8'), 'not the agent\'s\n', what);
    assert.deepEqual(await readdir(directory), [], `${what}: removed`);
  }
});

test('a server that answers 503 to the request for the rest: that check fails and says why, and what was kept stays for the next check, which resumes', async (t) => {
  const { s, next, kept } = await cutHalfWay(t);
  s.server.route('/app.zip', { kind: 'status', status: 503, body: 'maintenance' });
  const failed = await s.once();
  assert.equal(failed.code, 3, failed.stderr);
  assert.match(failed.stderr, /the server answered HTTP 503/);
  assert.equal((await partialFiles(s.sandbox.cache)).length, 2, 'the part and its note are kept');
  await nextRunFrom(s, next, kept);
});

test('a download cut short a week ago or more (its remote since changed, say) is removed by the next run, which says so', async (t) => {
  const { s, next } = await cutHalfWay(t);
  const directory = join(s.sandbox.cache, 'partial');
  const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3600 * 1000);
  for (const name of await readdir(directory)) await utimes(join(directory, name), eightDaysAgo, eightDaysAgo);
  const run = await nextRunFrom(s, next, undefined);
  assert.match(run.stderr, /removed .*partial\/[0-9a-f]+\.zip\.part, a download cut short a week ago or more that no check has resumed since/);
  assert.deepEqual(await partialFiles(s.sandbox.cache), []);
});

test('the downloads directory on a filesystem of its own: a whole download kept resumable in partial/, then kept for the next delta, is moved across, not failed with EXDEV', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'repo-deploy-downloads-apart-'));
  const disk = await smallDisk(t, '16m', join(root, 'cache', 'downloads'));
  t.after(() => rm(root, { recursive: true, force: true }));
  if (!disk) return;
  const s = await setup(t, '', { root });
  await chmod(join(root, 'cache'), 0o700);
  const next = await bigZip(s.root, 'v1.zip', '1');
  s.server.route('/app.zip', { kind: 'file', path: next.path });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.equal((await s.state()).current.revision, `sha256:${next.sha256}`);
  assert.deepEqual((await readdir(join(root, 'cache', 'delta-base'))).filter((name) => name.endsWith('.zip')).length, 1, run.stderr);
});
