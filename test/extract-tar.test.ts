// Tar extraction (the layers of OCI artifacts) keeps zip extraction's rules: real tars made by GNU
// tar, and hostile ones written entry by entry, each refused with a clear error and nothing
// written outside the staging directory.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import type { DeployError } from '../src/base/errors.js';
import { extractTar } from '../src/remotes/extract-tar.js';
import { smallDisk } from './helpers/small-disk.js';
import { temporaryDirectory } from './helpers/temp.js';

const run = promisify(execFile);
const limits = { maxUnpackedBytes: 100 << 20, maxEntries: 1000 };

interface HostileEntry {
  name: string;
  type?: tarStream.Header['type'];
  body?: string;
  linkname?: string;
  mode?: number;
}

/** A tar written entry by entry, as a hostile publisher would, gzipped unless said otherwise. */
async function tarOf(entries: HostileEntry[], { gzip = true } = {}): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = new Promise<void>((resolveAll, reject) => {
    pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolveAll());
    pack.on('error', reject);
  });
  for (const entry of entries) {
    await new Promise<void>((resolveEntry, reject) =>
      pack.entry({ name: entry.name, type: entry.type ?? 'file', linkname: entry.linkname, mode: entry.mode ?? 0o644 }, entry.body ?? '', (error) => (error ? reject(error) : resolveEntry())),
    );
  }
  pack.finalize();
  await collected;
  const tar = Buffer.concat(chunks);
  return gzip ? gzipSync(tar) : tar;
}

async function staging(t: TestContext): Promise<{ root: string; stage: string }> {
  const root = await temporaryDirectory(t);
  const stage = join(root, 'sandbox', 'stage');
  await mkdir(stage, { recursive: true });
  return { root, stage };
}

/** Every path under `directory`, relative, sorted. */
async function tree(directory: string): Promise<string[]> {
  return (await readdir(directory, { recursive: true })).sort();
}

test('a tar.gz made by GNU tar: files, directories, an inner symlink and modes arrive, each file hashed as written', async (t) => {
  const { root, stage } = await staging(t);
  const source = join(root, 'source');
  await mkdir(join(source, 'bin'), { recursive: true });
  await writeFile(join(source, 'index.html'), 'hello\n');
  await writeFile(join(source, 'bin', 'run'), '#!/bin/sh\necho run\n');
  await chmod(join(source, 'bin', 'run'), 0o4777); // setuid and world-write: neither kept
  await symlink('index.html', join(source, 'home.html'));
  await run('tar', ['-czf', join(root, 'app.tgz'), '-C', source, '.']);
  const summary = await extractTar(createReadStream(join(root, 'app.tgz')), stage, limits, 'app.tgz');
  assert.deepEqual(await tree(stage), ['bin', 'bin/run', 'home.html', 'index.html']);
  assert.equal(await readFile(join(stage, 'index.html'), 'utf8'), 'hello\n');
  assert.equal(await readlink(join(stage, 'home.html')), 'index.html');
  assert.equal((await stat(join(stage, 'bin', 'run'))).mode & 0o7777, 0o755);
  assert.deepEqual({ files: summary.files, symlinks: summary.symlinks, directories: summary.directories }, { files: 2, symlinks: 1, directories: 1 });
  assert.equal(summary.fileHashes.get('index.html'), createHash('sha256').update('hello\n').digest('hex'));
  assert.equal(summary.bytes, 'hello\n'.length + '#!/bin/sh\necho run\n'.length);
});

test('a plain (uncompressed) tar is read as well, and a gzip cut into one-byte chunks is still told by its first bytes', async (t) => {
  const { stage } = await staging(t);
  await extractTar(Readable.from([await tarOf([{ name: 'a/b.txt', body: 'b' }], { gzip: false })]), stage, limits, 'plain.tar');
  assert.equal(await readFile(join(stage, 'a', 'b.txt'), 'utf8'), 'b');
  const { stage: other } = await staging(t);
  const gzipped = await tarOf([{ name: 'c.txt', body: 'c' }]);
  await extractTar(Readable.from([...gzipped].map((byte) => Buffer.from([byte]))), other, limits, 'trickled.tgz');
  assert.equal(await readFile(join(other, 'c.txt'), 'utf8'), 'c');
});

const hostile: { situation: string; entries: HostileEntry[]; refusal: RegExp }[] = [
  { situation: 'an entry that climbs out with ..', entries: [{ name: '../escaped', body: 'x' }], refusal: /entry "\.\.\/escaped" climbs out with "\.\."/ },
  { situation: 'an absolute path', entries: [{ name: '/tmp/absolute', body: 'x' }], refusal: /absolute or drive path/ },
  { situation: 'a symlink out of the release', entries: [{ name: 'out', type: 'symlink', linkname: '../../../etc' }], refusal: /symlink to "\.\.\/\.\.\/\.\.\/etc", outside the release/ },
  { situation: 'a file written below a symlink that came first', entries: [{ name: 'link', type: 'symlink', linkname: '.' }, { name: 'link/x', body: 'x' }], refusal: /lies below "link", which is a symlink/ },
  { situation: 'a file below a symlink that comes later', entries: [{ name: 'dir/x', body: 'x' }, { name: 'dir', type: 'symlink', linkname: '/etc' }], refusal: /appears twice|lies below "dir", which is a symlink|outside the release/ },
  { situation: 'a character device', entries: [{ name: 'null', type: 'character-device' }], refusal: /is a character-device \(a device, fifo or other special file\)/ },
  { situation: 'a fifo', entries: [{ name: 'pipe', type: 'fifo' }], refusal: /is a fifo/ },
  { situation: 'a hard link', entries: [{ name: 'a', body: 'a' }, { name: 'b', type: 'link', linkname: 'a' }], refusal: /is a hard link \(to "a"\).*--hard-dereference/ },
  { situation: 'the same path twice', entries: [{ name: 'a', body: '1' }, { name: './a', body: '2' }], refusal: /entry "\.\/a" appears twice/ },
  { situation: 'a control character in a name', entries: [{ name: 'evil\u001b[2Jname', body: 'x' }], refusal: /has a control character in its name/ },
];

for (const { situation, entries, refusal } of hostile) {
  test(`a tar with ${situation} is refused, and nothing is written outside the staging directory`, async (t) => {
    const { root, stage } = await staging(t);
    await assert.rejects(extractTar(Readable.from([await tarOf(entries)]), stage, limits, 'hostile.tgz'), (error: Error) => {
      assert.match(error.message, /^archive hostile\.tgz rejected: /);
      assert.match(error.message, refusal);
      return true;
    });
    assert.deepEqual(await tree(join(root, 'sandbox')), ['stage', ...(await tree(stage)).map((path) => `stage/${path}`)].sort());
    for (const path of await tree(stage)) assert.ok(!(await lstat(join(stage, path))).isSymbolicLink(), `no symlink was made: ${path}`);
  });
}

test('a tar of more entries than max-entries, or more bytes than max-unpacked-size, is refused with the setting to raise', async (t) => {
  const { stage } = await staging(t);
  const many = Array.from({ length: 5 }, (_, index) => ({ name: `f${index}`, body: 'x' }));
  await assert.rejects(extractTar(Readable.from([await tarOf(many)]), stage, { ...limits, maxEntries: 4 }, 'many.tgz'), /more than max-entries = 4 entries/);
  const { stage: other } = await staging(t);
  await assert.rejects(extractTar(Readable.from([await tarOf([{ name: 'big', body: 'x'.repeat(2000) }])]), other, { ...limits, maxUnpackedBytes: 1000 }, 'big.tgz'), /unpacks to more than max-unpacked-size = 1000 bytes/);
});

test('a truncated or corrupt tar.gz is refused as unreadable, not half-trusted', async (t) => {
  const { stage } = await staging(t);
  const whole = await tarOf([{ name: 'a', body: 'x'.repeat(100_000) }]);
  await assert.rejects(extractTar(Readable.from([whole.subarray(0, whole.length / 2)]), stage, limits, 'cut.tgz'), /archive cut\.tgz is not a readable tar .*corrupt or truncated/);
  const { stage: other } = await staging(t);
  await assert.rejects(extractTar(Readable.from([Buffer.from('this is no archive at all, just words'.repeat(20))]), other, limits, 'junk.tgz'), /archive junk\.tgz is not a readable tar/);
});

test('a tar whose files do not fit on the disk fails as a full disk, saying where, not as a corrupt archive', async (t) => {
  const disk = await smallDisk(t, '256k');
  if (!disk) return;
  const stage = join(disk, 'stage');
  await mkdir(stage);
  const tar = await tarOf([{ name: 'big.bin', body: 'x'.repeat(1 << 20) }]);
  await assert.rejects(extractTar(Readable.from([tar]), stage, limits, 'big.tgz'), (error: DeployError) => {
    assert.equal(error.kind, 'disk-full', error.message);
    assert.match(error.message, /big\.bin/);
    assert.doesNotMatch(error.message, /corrupt|not a readable tar/);
    return true;
  });
});
