// A new zip over HTTP or S3 is rebuilt from the entries that changed (fetched with range
// requests) and the unchanged entries' data in the last archive downloaded, kept in the cache;
// what is deployed is byte for byte the archive a whole download gives (its sha256 is the
// revision, its manifest the same). A server without ranges, one that refuses several ranges per
// request, one that answers other ranges than asked, an archive replaced mid-delta and a damaged
// kept archive each end in a whole, verified download; the live release is kept meanwhile.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import { makeSandbox, runCli } from './helpers/cli.js';
import { startAgent } from './helpers/daemon.js';
import { etagOf, parseRanges } from './helpers/http-server.js';
import { startNginx } from './helpers/nginx.js';
import { kindsOfJunk } from './helpers/planted-junk.js';
import { smallDisk } from './helpers/small-disk.js';
import { s3AccessKey, startS3 } from './helpers/s3-server.js';
import { temporaryDirectory } from './helpers/temp.js';
import { setup, type Setup } from './helpers/zip-agent.js';
import { zipTree } from './helpers/zips.js';

interface Archive {
  path: string;
  bytes: Buffer;
  sha256: string;
}

/** 40 files of 48 KB that compress little, and an index naming the version. */
function releaseFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (let index = 0; index < 40; index++) files[`assets/part-${String(index).padStart(2, '0')}.txt`] = randomBytes(36_000).toString('base64');
  return files;
}

/** The release at `version`: `files` with the index, and `changed` files given new content. */
async function build(root: string, files: Record<string, string>, version: string, changed: string[] = []): Promise<Archive> {
  for (const name of changed) files[name] = randomBytes(36_000).toString('base64');
  const path = await zipTree({ ...files, 'index.html': `version ${version}\n` }, join(root, `v${version}-${Math.random().toString(36).slice(2)}.zip`), root);
  const bytes = await readFile(path);
  return { path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Version 1 deployed whole over HTTP; version 2 (two files changed) built, not yet served. */
async function deployedThenChanged(t: TestContext, config = '', root?: string): Promise<{ s: Setup; v2: Archive; files: Record<string, string> }> {
  const s = await setup(t, config, { root });
  const files = releaseFiles();
  const v1 = await build(s.root, files, '1');
  s.server.route('/app.zip', { kind: 'file', path: v1.path });
  const first = await s.once();
  assert.equal(first.code, 0, first.stderr);
  const v2 = await build(s.root, files, '2', ['assets/part-03.txt', 'assets/part-17.txt']);
  return { s, v2, files };
}

const manifestOf = async (live: string) => {
  const releases = join(live, '..', 'releases');
  const name = (await readdir(releases)).filter((entry) => entry.startsWith('.manifest-')).sort().at(-1)!;
  return JSON.parse(await readFile(join(releases, name), 'utf8'));
};

const keptArchives = async (cache: string) => (await readdir(join(cache, 'delta-base')).catch(() => [] as string[])).filter((name) => name.endsWith('.zip'));

/** The run's own count of what it fetched, from its log line. */
function deltaFigures(stderr: string): { fetched: number; requests: number } | undefined {
  const match = /rebuilt .* from a delta: (\d+) bytes? of (\d+) fetched in (\d+) requests?/.exec(stderr);
  return match ? { fetched: Number(match[1]), requests: Number(match[3]) } : undefined;
}

/** A 206 with `ranges` of `bytes` (a multipart one for several), whatever was asked. */
function answerRanges(response: ServerResponse, headers: Record<string, string>, bytes: Buffer, ranges: Array<{ start: number; end: number }>): void {
  if (ranges.length === 1) {
    const [{ start, end }] = ranges as [{ start: number; end: number }];
    response.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end - 1}/${bytes.length}` });
    return void response.end(bytes.subarray(start, end));
  }
  const boundary = 'parts';
  const body = Buffer.concat([
    ...ranges.flatMap(({ start, end }) => [Buffer.from(`\r\n--${boundary}\r\nContent-Range: bytes ${start}-${end - 1}/${bytes.length}\r\n\r\n`), bytes.subarray(start, end)]),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  response.writeHead(206, { ...headers, 'content-type': `multipart/byteranges; boundary=${boundary}` });
  response.end(body);
}

async function expectDeployed(s: Setup, archive: Archive, version: string): Promise<void> {
  assert.equal((await s.state()).current.revision, `sha256:${archive.sha256}`);
  assert.equal(await s.sandbox.liveFile('index.html'), `version ${version}\n`);
}

test('a changed archive is rebuilt from a delta over multipart/byteranges: only the changed entries, headers and directory are sent, and the release is the one a whole download gives', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  assert.equal((await keptArchives(s.sandbox.cache)).length, 1, 'the archive deployed is kept for the next delta');
  s.server.route('/app.zip', { kind: 'file', path: v2.path });
  s.server.resetCounters();
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  const figures = deltaFigures(run.stderr);
  assert.ok(figures, run.stderr);
  assert.equal(s.server.requests[0]?.headers.range, 'bytes=-65577', 'the first request asks for the end of the archive');
  assert.ok(s.server.requests.slice(1).some((request) => String(request.headers.range).includes(',')), 'several ranges per request');
  assert.ok(s.server.requests.slice(1).every((request) => request.headers['if-range'] === etagOf(v2.bytes)), 'every range names the version');
  // Two files changed of 40: the end of the archive (64 KiB), two entries, headers and directory.
  assert.ok(s.server.bodyBytesSent < v2.bytes.length / 5, `${s.server.bodyBytesSent} of ${v2.bytes.length} bytes sent`);
  assert.ok(figures.fetched <= s.server.bodyBytesSent);
  await expectDeployed(s, v2, '2');
  const kept = await keptArchives(s.sandbox.cache);
  assert.deepEqual((await readFile(join(s.sandbox.cache, 'delta-base', kept[0]!))).equals(v2.bytes), true, 'the rebuilt archive is kept for the next one');

  // The same archive downloaded whole by another agent gives the same release, file for file.
  const other = await makeSandbox(await temporaryDirectory(t), 'delta = no\n');
  assert.equal((await runCli(other.args(s.remote))).code, 0);
  assert.deepEqual(await manifestOf(s.sandbox.live), await manifestOf(other.live));
});

test('a server that answers 501 to several ranges per request: the delta is fetched one range per request', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  s.server.route('/app.zip', { kind: 'file', path: v2.path, multipleRanges: 501 });
  s.server.resetCounters();
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.ok(deltaFigures(run.stderr), run.stderr);
  const ranged = s.server.requests.filter((request) => request.status === 206);
  assert.ok(ranged.length >= 3 && ranged.every((request) => !String(request.headers.range).includes(',')), JSON.stringify(s.server.requests.map((request) => [request.headers.range, request.status])));
  await expectDeployed(s, v2, '2');
});

test('a server that ignores ranges answers the first request whole: that is the download, and nothing more is asked', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  s.server.route('/app.zip', { kind: 'file', path: v2.path, ranges: false });
  s.server.resetCounters();
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.equal(s.server.requests.length, 1);
  assert.equal(s.server.bodyBytesSent, v2.bytes.length);
  assert.equal(deltaFigures(run.stderr), undefined);
  await expectDeployed(s, v2, '2');
});

test('a server that answers other ranges than asked, out of bounds or twice: the delta is abandoned and the archive downloaded whole, never spliced', async (t) => {
  for (const lie of ['another range', 'out of bounds', 'a range twice'] as const) {
    const { s, v2 } = await deployedThenChanged(t);
    let ranged = 0;
    s.server.route('/app.zip', {
      kind: 'custom',
      respond(request, response) {
        const asked = parseRanges(String(request.headers.range ?? ''), v2.bytes.length);
        const headers = { 'content-type': 'application/zip', etag: etagOf(v2.bytes), 'accept-ranges': 'bytes' };
        // The first request (the archive's end) and the probe for multi-range support are answered truly.
        if (!asked || asked.length === 0) {
          response.writeHead(200, { ...headers, 'content-length': String(v2.bytes.length) });
          return void response.end(v2.bytes);
        }
        const honest = ranged++ < 2;
        const answer = honest ? asked : lie === 'another range' ? asked.map(({ start, end }) => ({ start: start + 1, end: end + 1 })) : lie === 'out of bounds' ? [{ start: v2.bytes.length - 10, end: v2.bytes.length + 10 }] : [asked[0]!, asked[0]!];
        answerRanges(response, headers, v2.bytes, answer);
      },
    });
    const run = await s.once();
    assert.equal(run.code, 0, `${lie}: ${run.stderr}`);
    assert.match(run.stderr, /no delta \(.*\): downloading it whole/, lie);
    assert.equal(deltaFigures(run.stderr), undefined, lie);
    await expectDeployed(s, v2, '2');
  }
});

test('an archive replaced between the first request and the ranges: If-Range no longer matches, and the new archive is downloaded whole', async (t) => {
  const { s, v2, files } = await deployedThenChanged(t);
  const v3 = await build(s.root, files, '3', ['assets/part-20.txt']);
  let served = 0;
  s.server.route('/app.zip', {
    kind: 'custom',
    respond(request, response) {
      const body = served++ === 0 ? v2.bytes : v3.bytes;
      const asked = parseRanges(String(request.headers.range ?? ''), body.length);
      const etag = etagOf(body);
      const usable = asked?.length === 1 && (request.headers['if-range'] === undefined || request.headers['if-range'] === etag);
      if (usable) {
        const [{ start, end }] = asked as [{ start: number; end: number }];
        response.writeHead(206, { 'content-type': 'application/zip', etag, 'content-range': `bytes ${start}-${end - 1}/${body.length}` });
        return void response.end(body.subarray(start, end));
      }
      response.writeHead(200, { 'content-type': 'application/zip', etag, 'content-length': String(body.length) });
      response.end(body);
    },
  });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /no delta \(the server answered a range request with the whole archive/);
  await expectDeployed(s, v3, '3');
});

test('with checksum pinned, a rebuilt archive that is not the one pinned (a server whose ranges carry wrong bytes) is downloaded whole and checked again before anything is refused', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  await writeFile(s.sandbox.config, `${await readFile(s.sandbox.config, 'utf8')}checksum = sha256:${v2.sha256}\n`);
  s.server.route('/app.zip', {
    kind: 'custom',
    respond(request, response) {
      const asked = parseRanges(String(request.headers.range ?? ''), v2.bytes.length);
      const headers = { 'content-type': 'application/zip', etag: etagOf(v2.bytes) };
      if (!asked || asked.length < 2) {
        if (asked?.length === 1) return answerRanges(response, headers, v2.bytes, asked);
        response.writeHead(200, { ...headers, 'content-length': String(v2.bytes.length) });
        return void response.end(v2.bytes);
      }
      // The ranges asked for, one byte of the last one changed.
      const lying = Buffer.from(v2.bytes);
      const last = asked.at(-1)!;
      lying[last.end - 1] = lying[last.end - 1]! ^ 0xff;
      answerRanges(response, headers, lying, asked);
    },
  });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /the archive rebuilt from a delta failed its check \(.*pinned by checksum.*\): downloading it whole/);
  await expectDeployed(s, v2, '2');
});

test('a kept archive damaged on disk is not reused: the archive is downloaded whole', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  const [kept] = await keptArchives(s.sandbox.cache);
  const path = join(s.sandbox.cache, 'delta-base', kept!);
  const bytes = await readFile(path);
  bytes[1000] = bytes[1000]! ^ 0xff;
  await writeFile(path, bytes);
  s.server.route('/app.zip', { kind: 'file', path: v2.path });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /no delta \(the previous archive kept in the cache is damaged/);
  await expectDeployed(s, v2, '2');
});

test('delta = no: the first request asks for the whole archive, and no archive is kept', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  await writeFile(s.sandbox.config, `${await readFile(s.sandbox.config, 'utf8')}delta = no\n`);
  s.server.route('/app.zip', { kind: 'file', path: v2.path });
  s.server.resetCounters();
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.equal(s.server.requests.length, 1);
  assert.equal(s.server.requests[0]?.headers.range, undefined);
  assert.deepEqual(await keptArchives(s.sandbox.cache), []);
  await expectDeployed(s, v2, '2');
});

test('S3: a changed object is rebuilt from single-range GETs with IfMatch, checked against its MD5 ETag', async (t) => {
  const s3 = await startS3(t);
  const root = await temporaryDirectory(t);
  const sandbox = await makeSandbox(root, `s3-endpoint = ${s3.endpoint}\naws-access-key = ${s3AccessKey}\naws-secret-key = S3RVER\n`);
  const remote = `s3://${s3.bucket}/app.zip`;
  const files = releaseFiles();
  const v1 = await build(root, files, '1');
  await s3.upload('app.zip', v1.bytes);
  assert.equal((await runCli(sandbox.args(remote))).code, 0);
  const v2 = await build(root, files, '2', ['assets/part-05.txt']);
  await s3.upload('app.zip', v2.bytes);
  s3.resetCounters();
  const run = await runCli(sandbox.args(remote));
  assert.equal(run.code, 0, run.stderr);
  assert.ok(deltaFigures(run.stderr), run.stderr);
  assert.match(String(s3.lastGet?.['if-match']), /^"[0-9a-f]+"$/);
  assert.ok(s3.bodyBytes < v2.bytes.length / 4, `${s3.bodyBytes} of ${v2.bytes.length} bytes sent`);
  const state = JSON.parse(await readFile(join(sandbox.cache, 'state.json'), 'utf8'));
  assert.equal(state.current.revision, `sha256:${v2.sha256}`);
  assert.equal(await sandbox.liveFile('index.html'), 'version 2\n');
});

test('nginx: a changed archive is rebuilt from multipart/byteranges answers of a real server', async (t) => {
  const root = await temporaryDirectory(t);
  const served = join(root, 'served');
  await mkdir(served);
  const nginx = await startNginx(t, served, root);
  const sandbox = await makeSandbox(root);
  const remote = nginx.url('/app.zip');
  const files = releaseFiles();
  const v1 = await build(root, files, '1');
  await rename(v1.path, join(served, 'app.zip'));
  const first = await runCli(sandbox.args(remote));
  assert.equal(first.code, 0, first.stderr);
  const v2 = await build(root, files, '2', ['assets/part-11.txt', 'assets/part-30.txt']);
  // nginx's ETag and Last-Modified are the file's mtime (whole seconds) and size: two archives of
  // one size written in the same second look alike to it, and the check rightly finds nothing
  // new. A release published later has a later mtime.
  const published = new Date((await stat(join(served, 'app.zip'))).mtime.getTime() + 60_000);
  await utimes(v2.path, published, published);
  await rename(v2.path, join(served, 'app.zip'));
  const before = (await nginx.requests()).length;
  const run = await runCli(sandbox.args(remote));
  assert.equal(run.code, 0, run.stderr);
  assert.ok(deltaFigures(run.stderr), run.stderr);
  const requests = (await nginx.requests()).slice(before);
  assert.equal(requests[0]?.range, 'bytes=-65577');
  assert.ok(requests.some((request) => request.status === 206 && request.range.includes(',')), JSON.stringify(requests));
  const sent = requests.reduce((sum, request) => sum + request.bodyBytes, 0);
  assert.ok(sent < v2.bytes.length / 5, `${sent} of ${v2.bytes.length} bytes sent`);
  const state = JSON.parse(await readFile(join(sandbox.cache, 'state.json'), 'utf8'));
  assert.equal(state.current.revision, `sha256:${v2.sha256}`);
  assert.equal(await sandbox.liveFile('index.html'), 'version 2\n');
});

test('junk where the last archive is kept (a FIFO for its note, the archive a link to a file outside, a note of another remote, another size): each is removed, the archive downloaded whole, and nothing outside is touched', async (t) => {
  const { s, v2, files } = await deployedThenChanged(t);
  const directory = join(s.sandbox.cache, 'delta-base');
  const outside = join(s.root, 'outside.zip');
  await writeFile(outside, await readFile(v2.path));
  const junk = kindsOfJunk(outside, 'bytes');
  for (const [index, [what, plant]] of junk.entries()) {
    const names = await readdir(directory);
    const note = join(directory, names.find((name) => name.endsWith('.json'))!);
    await plant(note, note.replace(/\.json$/, '.zip'));
    const next = await build(s.root, files, String(index + 2), [`assets/part-${String(index).padStart(2, '0')}.txt`]);
    s.server.route('/app.zip', { kind: 'file', path: next.path });
    s.server.resetCounters();
    const run = await s.once();
    assert.equal(run.code, 0, `${what}: ${run.stderr}`);
    assert.equal(s.server.requests[0]?.headers.range, undefined, `${what}: no delta without a good kept archive`);
    await expectDeployed(s, next, String(index + 2));
    assert.deepEqual((await readFile(outside)).equals(await readFile(v2.path)), true, what);
    assert.deepEqual((await readdir(directory)).length, 2, `${what}: the junk is replaced by the archive just deployed and its note`);
  }
});

test('a release whose every file changed: a delta would fetch more than half the archive, so it is downloaded whole', async (t) => {
  const { s, files } = await deployedThenChanged(t);
  const v3 = await build(s.root, files, '3', Object.keys(files));
  s.server.route('/app.zip', { kind: 'file', path: v3.path });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /no delta \(a delta would fetch \d+ of its \d+ bytes \(more than half/);
  await expectDeployed(s, v3, '3');
});

test('kill -9 while a delta is being fetched: the live release is untouched, nothing is left in downloads/, and the next run rebuilds the archive from the same kept one', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  let rangesAsked!: () => void;
  const asked = new Promise<void>((resolve) => (rangesAsked = resolve));
  s.server.route('/app.zip', {
    kind: 'custom',
    respond(request, response) {
      const ranges = parseRanges(String(request.headers.range ?? ''), v2.bytes.length);
      const headers = { 'content-type': 'application/zip', etag: etagOf(v2.bytes) };
      // The end, the directory and the probe are answered; the first request for changed bytes never is.
      if (ranges && ranges.length > 0 && (ranges.length < 2 || ranges[0]!.start === 0 && ranges[0]!.end === 1)) return answerRanges(response, headers, v2.bytes, ranges);
      rangesAsked();
    },
  });
  const agent = startAgent(t, s.sandbox.args(s.remote));
  await asked;
  agent.child.kill('SIGKILL');
  await agent.done;
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  s.server.route('/app.zip', { kind: 'file', path: v2.path });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.ok(deltaFigures(run.stderr), run.stderr);
  await expectDeployed(s, v2, '2');
  assert.deepEqual(await readdir(join(s.sandbox.cache, 'downloads')), []);
});

test('the kept archive is private to the agent (directory 700, archive 600): the user nobody can neither read it nor put another in its place', async (t) => {
  const { s } = await deployedThenChanged(t);
  const directory = join(s.sandbox.cache, 'delta-base');
  const [kept] = await keptArchives(s.sandbox.cache);
  assert.equal((await stat(directory)).mode & 0o777, 0o700);
  assert.equal((await stat(join(directory, kept!))).mode & 0o777, 0o600);
  const read = spawnSync('runuser', ['-u', 'nobody', '--', 'cat', join(directory, kept!)], { encoding: 'utf8' });
  assert.notEqual(read.status, 0);
  const write = spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', `echo junk > ${join(directory, 'planted.zip')}`], { encoding: 'utf8' });
  assert.notEqual(write.status, 0);
  assert.deepEqual((await readdir(directory)).sort(), [kept!, kept!.replace(/\.zip$/, '.json')].sort());
});

test('an archive of many tiny files, where the headers and directory alone are most of it: the delta is given up from the end record alone, and the archive downloaded whole', async (t) => {
  const s = await setup(t);
  const tiny = (version: string) => Object.fromEntries(Array.from({ length: 3000 }, (_, index) => [`d${index % 30}/f${index}.txt`, `${index % 7 === 0 ? version : 'same'} ${index}\n`]));
  const v1 = await build(s.root, tiny('1'), '1');
  s.server.route('/app.zip', { kind: 'file', path: v1.path });
  assert.equal((await s.once()).code, 0);
  const v2 = await build(s.root, tiny('2'), '2');
  s.server.route('/app.zip', { kind: 'file', path: v2.path });
  s.server.resetCounters();
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /no delta \(its central directory and local headers alone \(about \d+ of its \d+ bytes, 3031 entries\) are more than half the archive\)/);
  assert.deepEqual(s.server.requests.map((request) => request.headers.range), ['bytes=-65577', undefined], 'the end, then the whole archive: not its directory');
  await expectDeployed(s, v2, '2');
});

test('a connection cut in the middle of a multipart answer: the delta is given up and the archive downloaded whole', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  s.server.route('/app.zip', {
    kind: 'custom',
    respond(request, response) {
      const asked = parseRanges(String(request.headers.range ?? ''), v2.bytes.length);
      const headers = { 'content-type': 'application/zip', etag: etagOf(v2.bytes) };
      const probe = asked?.length === 2 && asked[0]!.start === 0 && asked[0]!.end === 1;
      if (!asked || asked.length === 0) {
        response.writeHead(200, { ...headers, 'content-length': String(v2.bytes.length) });
        return void response.end(v2.bytes);
      }
      if (asked.length === 1 || probe) return answerRanges(response, headers, v2.bytes, asked);
      // Half of the multipart answer, then the connection is cut.
      response.writeHead(206, { ...headers, 'content-type': 'multipart/byteranges; boundary=cut' });
      const first = asked[0]!;
      response.write(Buffer.concat([Buffer.from(`--cut\r\nContent-Range: bytes ${first.start}-${first.end - 1}/${v2.bytes.length}\r\n\r\n`), v2.bytes.subarray(first.start, first.start + Math.floor((first.end - first.start) / 2))]), () => response.socket?.destroy());
    },
  });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /no delta \(.*\): downloading it whole/);
  await expectDeployed(s, v2, '2');
});

test('a kept archive of a remote no check has used for 30 days is removed; the remote\'s own, however old, is kept', async (t) => {
  const { s, v2 } = await deployedThenChanged(t);
  const directory = join(s.sandbox.cache, 'delta-base');
  const [own] = await keptArchives(s.sandbox.cache);
  const monthAgo = new Date(Date.now() - 31 * 24 * 3600 * 1000);
  // Another remote's, as left by an earlier configuration, and this remote's own: both a month old.
  await writeFile(join(directory, 'aaaaaaaaaaaaaaaaaaaaaaaa.zip'), 'an old archive');
  await writeFile(join(directory, 'aaaaaaaaaaaaaaaaaaaaaaaa.json'), '{}');
  for (const name of await readdir(directory)) await utimes(join(directory, name), monthAgo, monthAgo);
  s.server.route('/app.zip', { kind: 'file', path: v2.path });
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  assert.ok(deltaFigures(run.stderr), 'the remote\'s own kept archive served the delta');
  assert.deepEqual((await readdir(directory)).sort(), [own!, own!.replace(/\.zip$/, '.json')].sort());
});

test('a full disk while a delta is rebuilt: the check fails saying so, version 1 stays live and its kept archive whole; with room, the next check resumes the whole download it fell back to', async (t) => {
  // A directory of the test's own, removed after the small disk inside it is unmounted (hooks run in the order registered).
  const root = await mkdtemp(join(tmpdir(), 'repo-deploy-delta-full-'));
  const { s, v2 } = await deployedThenChanged(t, '', root);
  const { cache } = s.sandbox;
  const [kept] = await keptArchives(cache);
  const keptBytes = await readFile(join(cache, 'delta-base', kept!));
  // The cache moved onto a filesystem with room for what it holds and 512 KiB more: not for a
  // rebuilt archive of 1.4 MB.
  const aside = join(s.root, 'cache-aside');
  execFileSync('cp', ['-a', cache, aside]);
  const used = Number(execFileSync('du', ['-sk', aside], { encoding: 'utf8' }).split('\t')[0]);
  const disk = await smallDisk(t, `${used + 512}k`, cache);
  t.after(() => rm(root, { recursive: true, force: true }));
  if (!disk) return;
  execFileSync('cp', ['-a', `${aside}/.`, cache]);
  s.server.route('/app.zip', { kind: 'file', path: v2.path });
  const full = await s.once();
  assert.equal(full.code, 3, full.stderr);
  assert.match(full.stderr, /no delta \(the delta failed: .*ENOSPC.*\): downloading it whole/);
  assert.match(full.stderr, /no space left/i);
  assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n');
  assert.ok((await readFile(join(cache, 'delta-base', kept!))).equals(keptBytes), 'the kept archive is untouched');
  execFileSync('mount', ['-o', 'remount,size=16m', disk]);
  const run = await s.once();
  assert.equal(run.code, 0, run.stderr);
  // What the whole download had received when the disk filled is kept, and resumed first.
  assert.match(run.stderr, /resuming the download of .* at \d+ of \d+ bytes/);
  await expectDeployed(s, v2, '2');
});

test('a peer that lies about size, sends more than asked or stalls: absurd sizes fail the check (max-download-size), the rest fall back to a whole download', async (t) => {
  for (const peer of ['an absurd size', 'more than asked', 'a stalled range'] as const) {
    const { s, v2 } = await deployedThenChanged(t, 'http-timeout = 1\n');
    s.server.route('/app.zip', {
      kind: 'custom',
      respond(request, response) {
        const asked = parseRanges(String(request.headers.range ?? ''), v2.bytes.length);
        const headers = { 'content-type': 'application/zip', etag: etagOf(v2.bytes) };
        if (!asked || asked.length === 0) {
          response.writeHead(200, { ...headers, 'content-length': String(v2.bytes.length) });
          return void response.end(v2.bytes);
        }
        const isEnd = asked.length === 1 && asked[0]!.end === v2.bytes.length && request.headers.range?.startsWith('bytes=-');
        if (peer === 'an absurd size' && isEnd) {
          response.writeHead(206, { ...headers, 'content-range': `bytes 0-9/${2 ** 50}` });
          return void response.end(v2.bytes.subarray(0, 10));
        }
        if (isEnd || asked.length === 2) return answerRanges(response, headers, v2.bytes, asked);
        if (peer === 'a stalled range') return void response.writeHead(206, { ...headers, 'content-range': `bytes ${asked[0]!.start}-${asked[0]!.end - 1}/${v2.bytes.length}` });
        // One byte more than the first range asked for.
        const [{ start, end }] = asked as [{ start: number; end: number }];
        response.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end - 1}/${v2.bytes.length}` });
        response.end(v2.bytes.subarray(start, end + 1));
      },
    });
    const run = await s.once();
    if (peer === 'an absurd size') {
      assert.equal(run.code, 3, `${peer}: ${run.stderr}`);
      assert.match(run.stderr, /larger than max-download-size .*: the server announced 1125899906842624/, peer);
      assert.equal(await s.sandbox.liveFile('index.html'), 'version 1\n', peer);
      continue;
    }
    assert.equal(run.code, 0, `${peer}: ${run.stderr}`);
    assert.match(run.stderr, /no delta \(.*\): downloading it whole/, peer);
    await expectDeployed(s, v2, '2');
  }
});
