import assert from 'node:assert/strict';
import { lstat, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { copyTree } from '../src/base/copy-tree.js';
import { extractZip, type ExtractLimits } from '../src/remotes/extract.js';
import { rawZip, symlinkEntry, type RawEntry } from './helpers/raw-zip.js';
import { temporaryDirectory } from './helpers/temp.js';
import { streamingZip, zipTree } from './helpers/zips.js';

const limits: ExtractLimits = { maxUnpackedBytes: 10 * 1024 * 1024, maxEntries: 1000 };

async function hostile(t: Parameters<typeof temporaryDirectory>[0], entries: RawEntry[], extractLimits = limits) {
  const root = await temporaryDirectory(t);
  const zipPath = join(root, 'hostile.zip');
  await writeFile(zipPath, rawZip(entries));
  const staging = join(root, 'stage', 'release');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(staging, { recursive: true });
  const error = await extractZip(zipPath, staging, extractLimits, 'hostile.zip').then(
    () => undefined,
    (caught: Error) => caught,
  );
  // Nothing may appear beside the staging directory, whatever the archive tried.
  assert.deepEqual((await readdir(root)).sort(), ['hostile.zip', 'stage']);
  assert.deepEqual(await readdir(join(root, 'stage')), ['release']);
  return { error, staging };
}

test('a zip made by the zip command keeps files, modes, directories and inner symlinks', async (t) => {
  const root = await temporaryDirectory(t);
  const zipPath = await zipTree(
    {
      'index.html': 'hello',
      'bin/start.sh': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
      'conf/app.conf': { content: 'x=1', mode: 0o600 },
      'latest.html': { symlink: 'index.html' },
      'bin/conf': { symlink: '../conf' },
    },
    join(root, 'app.zip'),
    root,
  );
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  const summary = await extractZip(zipPath, staging, limits);
  assert.equal(await readFile(join(staging, 'index.html'), 'utf8'), 'hello');
  assert.equal((await stat(join(staging, 'bin/start.sh'))).mode & 0o777, 0o755);
  assert.equal((await stat(join(staging, 'conf/app.conf'))).mode & 0o777, 0o600);
  assert.equal(await readlink(join(staging, 'latest.html')), 'index.html');
  assert.equal(await readlink(join(staging, 'bin/conf')), '../conf');
  assert.equal(summary.files, 3);
  assert.equal(summary.symlinks, 2);
});

test('a zip written by a streaming writer (data descriptors) extracts completely', async (t) => {
  const root = await temporaryDirectory(t);
  const files: Record<string, string> = {};
  for (let index = 0; index < 300; index++) files[`dir${index % 7}/file-${index}.txt`] = `content ${index}\n`.repeat(index % 50);
  const zipPath = await streamingZip(files, join(root, 'stream.zip'));
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  const summary = await extractZip(zipPath, staging, limits);
  assert.equal(summary.files, 300);
  for (const [name, content] of Object.entries(files)) assert.equal(await readFile(join(staging, name), 'utf8'), content);
});

const hostileCases: Array<[string, RawEntry[], RegExp]> = [
  ['an absolute path', [{ name: '/etc/evil', data: 'x' }], /\/etc\/evil/],
  ['a ".." component', [{ name: 'ok/../../evil', data: 'x' }], /ok\/\.\.\/\.\.\/evil/],
  ['a backslash traversal', [{ name: '..\\evil', data: 'x' }], /evil/],
  ['a drive letter', [{ name: 'C:/evil', data: 'x' }], /C:\/evil/],
  ['a symlink to an absolute path', [symlinkEntry('link', '/etc/passwd')], /"link".*outside the release/],
  ['a symlink climbing out', [{ name: 'sub/', mode: 0o040755 }, symlinkEntry('sub/link', '../../outside')], /"sub\/link".*outside the release/],
  ['a file written through a symlink', [symlinkEntry('dir', '.'), { name: 'dir/file', data: 'x' }], /"dir\/file".*lies below "dir"/],
  ['an entry named twice', [{ name: 'a', data: '1' }, { name: 'a', data: '2' }], /"a" appears twice/],
  ['a device entry', [{ name: 'dev', data: '', mode: 0o020644 }], /"dev" is a device/],
  ['a corrupt entry (bad CRC)', [{ name: 'good', data: 'fine' }, { name: 'bad', data: 'payload', badCrc: true }], /"bad" fails its CRC-32 check/],
];

for (const [situation, entries, message] of hostileCases) {
  test(`an archive with ${situation} is rejected whole, naming the entry`, async (t) => {
    const { error } = await hostile(t, entries);
    assert.ok(error, 'extraction must fail');
    assert.match(error.message, /rejected|not a readable zip/);
    assert.match(error.message, message);
  });
}

test('an archive larger than max-unpacked-size is refused before anything is written', async (t) => {
  const { error, staging } = await hostile(t, [{ name: 'big', data: Buffer.alloc(4096) }], { maxUnpackedBytes: 1024, maxEntries: 10 });
  assert.match(error?.message ?? '', /max-unpacked-size/);
  assert.deepEqual(await readdir(staging), []);
});

test('an archive with more entries than max-entries is refused', async (t) => {
  const entries = Array.from({ length: 20 }, (_, index) => ({ name: `f${index}`, data: 'x' }));
  const { error } = await hostile(t, entries, { maxUnpackedBytes: 1 << 20, maxEntries: 10 });
  assert.match(error?.message ?? '', /20 entries exceed max-entries = 10/);
});

test('a truncated archive is rejected as corrupt or truncated', async (t) => {
  const root = await temporaryDirectory(t);
  const whole = rawZip([{ name: 'a.txt', data: 'a'.repeat(5000) }, { name: 'b.txt', data: 'b'.repeat(5000) }]);
  const zipPath = join(root, 'cut.zip');
  await writeFile(zipPath, whole.subarray(0, whole.length - 40));
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  await assert.rejects(extractZip(zipPath, staging, limits, 'cut.zip'), /cut\.zip is not a readable zip.*corrupt or truncated/);
});

test('setuid bits stored in an archive are dropped; executables stay executable', async (t) => {
  const root = await temporaryDirectory(t);
  const zipPath = join(root, 'modes.zip');
  await writeFile(zipPath, rawZip([{ name: 'tool', data: '#!/bin/sh\n', mode: 0o104755 }]));
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  await extractZip(zipPath, staging, limits);
  assert.equal((await lstat(join(staging, 'tool'))).mode & 0o7777, 0o755);
});

test('an archive storing 0777 directories and 0666 files makes nothing group- or world-writable; owner and execute bits are kept', async (t) => {
  const root = await temporaryDirectory(t);
  const zipPath = join(root, 'loose.zip');
  await writeFile(
    zipPath,
    rawZip([
      { name: 'public/', data: '', mode: 0o040777 },
      { name: 'public/app.js', data: 'app()', mode: 0o100666 },
      { name: 'bin/run', data: '#!/bin/sh\n', mode: 0o100777 },
      { name: 'secret.conf', data: 'x', mode: 0o100600 },
    ]),
  );
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  await extractZip(zipPath, staging, limits);
  const modeOf = async (path: string) => (await lstat(join(staging, path))).mode & 0o7777;
  assert.equal(await modeOf('public'), 0o755);
  assert.equal(await modeOf('public/app.js'), 0o644);
  assert.equal(await modeOf('bin/run'), 0o755);
  assert.equal(await modeOf('secret.conf'), 0o600);
});

test('a git checkout made under a loose umask (files 0666) is copied without group or world write, nor setuid; a 0644 file keeps its mode', async (t) => {
  const root = await temporaryDirectory(t);
  const source = join(root, 'checkout');
  const { chmod, mkdir } = await import('node:fs/promises');
  await mkdir(join(source, 'public'), { recursive: true });
  await writeFile(join(source, 'public', 'app.js'), 'app()');
  await chmod(join(source, 'public', 'app.js'), 0o666);
  await writeFile(join(source, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(source, 'run.sh'), 0o777);
  await writeFile(join(source, 'setuid'), '#!/bin/sh\n');
  await chmod(join(source, 'setuid'), 0o4755);
  await writeFile(join(source, 'plain.txt'), 'plain');
  await chmod(join(source, 'plain.txt'), 0o644);
  const staging = join(root, 'out');
  await mkdir(staging);
  await copyTree(source, staging, 'a checkout');
  assert.equal((await lstat(join(staging, 'public', 'app.js'))).mode & 0o7777, 0o644);
  assert.equal((await lstat(join(staging, 'run.sh'))).mode & 0o7777, 0o755);
  assert.equal((await lstat(join(staging, 'setuid'))).mode & 0o7777, 0o755);
  assert.equal((await lstat(join(staging, 'plain.txt'))).mode & 0o7777, 0o644);
});

test('entries of 1 MiB and more are streamed, kept whole, and CRC-checked too', async (t) => {
  const root = await temporaryDirectory(t);
  const large = Buffer.alloc(3 * 1024 * 1024 + 17, 'abcdefgh');
  const zipPath = join(root, 'large.zip');
  await writeFile(zipPath, rawZip([{ name: 'small.txt', data: 'small' }, { name: 'data/large.bin', data: large }, { name: 'data/second.bin', data: large }]));
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  const summary = await extractZip(zipPath, staging, limits);
  assert.equal(summary.files, 3);
  assert.ok((await readFile(join(staging, 'data/large.bin'))).equals(large));
  assert.ok((await readFile(join(staging, 'data/second.bin'))).equals(large));

  const corruptPath = join(root, 'corrupt-large.zip');
  await writeFile(corruptPath, rawZip([{ name: 'data/large.bin', data: large, badCrc: true }]));
  const corruptStaging = join(root, 'out2');
  await (await import('node:fs/promises')).mkdir(corruptStaging);
  await assert.rejects(extractZip(corruptPath, corruptStaging, limits, 'corrupt-large.zip'), /"data\/large\.bin" fails its CRC-32 check/);
});

test('a corrupt small entry stops the large files being written beside it, and the extraction fails once', async (t) => {
  const root = await temporaryDirectory(t);
  const large = Buffer.alloc(8 * 1024 * 1024, 'abcdefgh');
  const zipPath = join(root, 'mixed.zip');
  const small = Array.from({ length: 50 }, (_, index) => ({ name: `small/f${index}.txt`, data: `file ${index}\n` }));
  await writeFile(zipPath, rawZip([{ name: 'data/one.bin', data: large }, { name: 'data/two.bin', data: large }, ...small, { name: 'small/bad.txt', data: 'payload', badCrc: true }]));
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  await assert.rejects(extractZip(zipPath, staging, { ...limits, maxUnpackedBytes: 64 << 20 }, 'mixed.zip'), /"small\/bad\.txt" fails its CRC-32 check/);
  // The large files' streams were stopped before the failure was reported: the second one was
  // never begun, and nothing is still open on the staging directory.
  const written: string[] = await readdir(join(staging, 'data')).catch(() => []);
  assert.ok(!written.includes('two.bin'), `the second large file was not started: ${written.join(', ')}`);
  const openFiles = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  assert.deepEqual(openFiles.filter((path) => path.startsWith(staging)), []);
});

test('large and small entries extracted side by side are each whole, with the sha256 of what was written', async (t) => {
  const root = await temporaryDirectory(t);
  const large = Buffer.alloc(5 * 1024 * 1024 + 3, 'large file ');
  const small = Array.from({ length: 200 }, (_, index) => ({ name: `small/f${index}.txt`, data: `file ${index}\n`.repeat(index) }));
  const zipPath = join(root, 'mixed.zip');
  await writeFile(zipPath, rawZip([{ name: 'data/one.bin', data: large }, ...small, { name: 'data/two.bin', data: large }]));
  const staging = join(root, 'out');
  await (await import('node:fs/promises')).mkdir(staging);
  const summary = await extractZip(zipPath, staging, { ...limits, maxUnpackedBytes: 64 << 20 });
  assert.equal(summary.files, 202);
  const { createHash } = await import('node:crypto');
  for (const name of ['data/one.bin', 'data/two.bin', 'small/f7.txt', 'small/f199.txt']) {
    const bytes = await readFile(join(staging, name));
    assert.equal(summary.fileHashes.get(name), createHash('sha256').update(bytes).digest('hex'), name);
  }
  assert.ok((await readFile(join(staging, 'data/two.bin'))).equals(large));
});

test('a small entry whose declared compressed size runs past the end of the archive is refused before a buffer of that size is made', async (t) => {
  const before = process.memoryUsage().arrayBuffers;
  const { error } = await hostile(t, [{ name: 'good', data: 'fine' }, { name: 'liar', data: 'short', deflate: true, declaredCompressedSize: 0xf0000000 }]);
  assert.match(error?.message ?? '', /"liar" cannot be read \(its data runs past the end of the archive\); the archive is corrupt or truncated/);
  // Nothing near the declared 3.75 GiB was ever allocated for it.
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20);
});

test('the entries an extraction reports are the tree describeTree reads back: the manifest needs no second walk', async (t) => {
  const { describeTree, manifestBytes } = await import('../src/verify/manifest.js');
  const { mkdir } = await import('node:fs/promises');
  const root = await temporaryDirectory(t);
  const large = Buffer.alloc(2 * 1024 * 1024 + 3, 'large');
  const cases: Array<[string, RawEntry[]]> = [
    [
      'names that sort differently by code point, by component and by UTF-16 unit; implicit and explicit directories; every kind and mode',
      [
        { name: 'a-b/x.txt', data: 'dash' },
        { name: 'a/b/deep/file.txt', data: 'deep, its parents never listed' },
        { name: 'a/', mode: 0o040700 },
        { name: 'B.txt', data: 'upper case first' },
        { name: 'a.txt', data: 'a dot' },
        { name: 'ｚ.txt', data: 'U+FF5A, after a surrogate pair in UTF-16' },
        { name: '😀.txt', data: 'a surrogate pair' },
        { name: 'bin/run', data: '#!/bin/sh\n', mode: 0o100755 },
        { name: 'bin/setuid', data: '#!/bin/sh\n', mode: 0o104777 },
        { name: 'secret.conf', data: 'private', mode: 0o100600 },
        { name: 'shared/', mode: 0o040777 },
        { name: 'shared/public.txt', data: 'world-writable in the archive', mode: 0o100666 },
        { name: 'empty/', mode: 0o040755 },
        { name: 'empty.txt', data: '' },
        { name: 'dos.txt', data: 'made on DOS', dosAttributes: 0x20 },
        { name: 'data/large.bin', data: large, deflate: true },
        { name: 'data/small.bin', data: 'x'.repeat(5000), deflate: true },
        symlinkEntry('a/link', 'b/deep/file.txt'),
        symlinkEntry('current', 'a'),
      ],
    ],
    ['a single file at the root', [{ name: 'only.txt', data: 'only' }]],
    ['nothing', []],
  ];
  for (const [index, [label, entries]] of cases.entries()) {
    const zipPath = join(root, `case${index}.zip`);
    await writeFile(zipPath, rawZip(entries));
    const staging = join(root, `out${index}`);
    await mkdir(staging);
    const summary = await extractZip(zipPath, staging, limits);
    const walked = await describeTree(staging);
    assert.deepEqual([...summary.entries!], walked, label);
    // Byte for byte too (key order): the history compares two releases' manifests line by line.
    assert.equal(manifestBytes(summary.entries!).toString(), manifestBytes(walked).toString(), label);
  }
});
