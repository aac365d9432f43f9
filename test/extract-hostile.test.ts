// Archives from public corpora and crafted ones that once got through: chains of symlinks that
// leave the release, overlapping entries, entries that inflate past their declared size, and
// legitimate but odd archives (UTF-8 names without the flag, DOS volume labels, control
// characters, names too long for the filesystem).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { extractZip, type ExtractLimits } from '../src/remotes/extract.js';
import { DeployError } from '../src/base/errors.js';
import { makeSandbox, runCli } from './helpers/cli.js';
import { rawZip, symlinkEntry, type RawEntry } from './helpers/raw-zip.js';
import { temporaryDirectory } from './helpers/temp.js';

const limits: ExtractLimits = { maxUnpackedBytes: 1024 * 1024 * 1024, maxEntries: 100_000 };
const corpus = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'zip-corpus', 'archives');

async function extract(t: Parameters<typeof temporaryDirectory>[0], archive: Buffer | string, extractLimits = limits) {
  const root = await temporaryDirectory(t);
  let zipPath = archive as string;
  if (Buffer.isBuffer(archive)) {
    zipPath = join(root, 'archive.zip');
    await writeFile(zipPath, archive);
  }
  const staging = join(root, 'stage', 'release');
  await mkdir(staging, { recursive: true });
  const error = await extractZip(zipPath, staging, extractLimits, 'archive.zip').then(() => undefined, (caught: Error) => caught);
  assert.deepEqual(await readdir(join(root, 'stage')), ['release'], 'nothing beside the staging directory');
  return { error, staging };
}

/** Shuffles deterministically (a fixed seed), so a failure names an order that can be run again. */
function shuffled<T>(items: T[], seed: number): T[] {
  const result = [...items];
  let state = seed;
  for (let index = result.length - 1; index > 0; index--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const other = state % (index + 1);
    [result[index], result[other]] = [result[other] as T, result[index] as T];
  }
  return result;
}

const orders = <T>(entries: T[]) => ({ forward: entries, reverse: [...entries].reverse(), shuffled: shuffled(entries, entries.length * 7919) });

test('chains of symlinks of depth 1 to 10 that leave the release through an earlier link are refused, to files and directories, in every order', async (t) => {
  // b0 leads to the release root (inside); b1 = b0/.. leaves it; each further link goes through the one before.
  const deep = 'd0/d1/d2/d3/d4/d5/d6';
  for (let depth = 1; depth <= 10; depth++) {
    for (const leadsTo of ['file', 'directory'] as const) {
      const links: RawEntry[] = [symlinkEntry(`${deep}/b0`, '../'.repeat(7)), symlinkEntry(`${deep}/b1`, 'b0/..')];
      for (let index = 2; index <= depth; index++) links.push(symlinkEntry(`${deep}/b${index}`, `b${index - 1}/x`));
      const last = links[links.length - 1] as RawEntry;
      if (leadsTo === 'file') links[links.length - 1] = symlinkEntry(last.name as string, `${(last.data as string).replace(/\/x$|$/, '')}/canary.txt`);
      for (const [order, entries] of Object.entries(orders([{ name: `${deep}/keep.txt`, data: 'inside\n' }, ...links]))) {
        const { error } = await extract(t, rawZip(entries));
        assert.ok(error instanceof DeployError, `depth ${depth}, to a ${leadsTo}, ${order} order: refused`);
        assert.match(error.message, /is a symlink to ".*", outside the release/, `depth ${depth} ${leadsTo} ${order}`);
      }
    }
  }
});

test('chains of symlinks that stay inside the release deploy, in every order', async (t) => {
  for (let depth = 1; depth <= 10; depth++) {
    const links: RawEntry[] = [symlinkEntry('a/l0', '../data')];
    for (let index = 1; index < depth; index++) links.push(symlinkEntry(`a/l${index}`, `l${index - 1}`));
    for (const [order, entries] of Object.entries(orders([{ name: 'data/file.txt', data: 'inside\n' }, ...links]))) {
      const { error, staging } = await extract(t, rawZip(entries));
      assert.equal(error, undefined, `depth ${depth}, ${order} order: ${error?.message}`);
      assert.equal((await stat(join(staging, 'a', `l${depth - 1}`, 'file.txt'))).size, 7);
    }
  }
});

test('overlapping entries (64 entries sharing one 4 MiB body) are refused as a zip bomb', async (t) => {
  const entries: RawEntry[] = [{ name: 'body-0', data: Buffer.alloc(4 * 1024 * 1024), deflate: true }];
  for (let index = 1; index < 64; index++) entries.push({ name: `body-${index}`, pointAt: 0 });
  const archive = rawZip(entries);
  assert.ok(archive.length < 16 * 1024, `a small archive: ${archive.length} bytes`);
  const { error, staging } = await extract(t, archive);
  assert.ok(error instanceof DeployError);
  assert.match(error.message, /entry "body-\d+" overlaps the data of entry "body-\d+" \(a zip bomb's trick\)/);
  assert.deepEqual(await readdir(staging), []);
});

test('an entry that declares 1,000 bytes and inflates to 256 MiB is refused with bounded memory', async (t) => {
  const root = await temporaryDirectory(t);
  const archive = join(root, 'liar.zip');
  await writeFile(archive, rawZip([{ name: 'liar.bin', data: Buffer.alloc(256 * 1024 * 1024), deflate: true, declaredSize: 1000 }]));
  const sandbox = await makeSandbox(root);
  // The whole agent, measured from outside: peak resident memory of the process.
  const { stderr } = await promisify(execFile)('/usr/bin/time', ['-f', 'peak-kb=%M', process.execPath, join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js'), ...sandbox.args(archive)]).catch((error: { stderr: string }) => error);
  assert.match(stderr, /entry "liar\.bin" holds more data than its declared 1000 bytes/);
  const peakKb = Number(/peak-kb=(\d+)/.exec(stderr)?.[1]);
  assert.ok(peakKb < 200 * 1024, `peak memory ${Math.round(peakKb / 1024)} MiB stays well under the 256 MiB the entry inflates to`);
  await assert.rejects(access(sandbox.live));
});

test('legitimate odd archives: UTF-8 names without the UTF-8 flag, a DOS volume label, as unzip and Go read them', async (t) => {
  const { error, staging } = await extract(t, rawZip([
    { name: Buffer.from('caf\u00e9/\u4e16\u754c.txt', 'utf8'), data: 'named in UTF-8 by macOS\n', utf8Flag: false },
    { name: 'C_DRIVE', dosAttributes: 0x28 },
    { name: 'plain.txt', data: 'ascii\n' },
  ]));
  assert.equal(error, undefined, error?.message);
  assert.deepEqual((await readdir(staging)).sort(), ['caf\u00e9', 'plain.txt']);
  assert.deepEqual(await readdir(join(staging, 'caf\u00e9')), ['\u4e16\u754c.txt']);
});

test('a name with a control character, and names too long for the filesystem, are refused with a clear exit 3', async (t) => {
  const control = await extract(t, rawZip([{ name: 'bell\u0007.txt', data: 'x' }]));
  assert.match(control.error?.message ?? '', /entry "bell\\u0007\.txt" has a control character in its name/);

  for (const name of ['n'.repeat(300), Array.from({ length: 40 }, () => 'd'.repeat(120)).join('/') + '/f.txt']) {
    const root = await temporaryDirectory(t);
    const archive = join(root, 'long.zip');
    await writeFile(archive, rawZip([{ name, data: 'x' }]));
    const sandbox = await makeSandbox(root);
    const result = await runCli(sandbox.args(archive));
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /has a name longer than a filesystem allows \(255 bytes a name, 4095 a path\)/);
    assert.doesNotMatch(result.stderr, /ENAMETOOLONG/);
  }
});

test('the public corpus: every archive either extracts or is refused with a clear message; nothing is written outside', async (t) => {
  // The corpus sits beside the repository, not in it (archives of other projects, kept byte for
  // byte); a clone of the repository alone has no ../shared, and skips this test rather than fail.
  if (!(await access(corpus).then(() => true, () => false))) {
    t.skip(`the public zip corpus is not at ${corpus}: it is kept beside the repository (../shared/zip-corpus, with SOURCES.md naming each archive's public origin), not in it; CI, which has it, runs this test`);
    return;
  }
  const files: string[] = [];
  for (const name of await readdir(corpus)) {
    const path = join(corpus, name);
    if ((await stat(path)).isDirectory()) for (const inner of await readdir(path)) files.push(join(path, inner));
    else files.push(path);
  }
  assert.ok(files.length >= 80, `the corpus is there: ${files.length} archives`);
  const outcomes = new Map<string, string>();
  for (const file of files) {
    const { error, staging } = await extract(t, file);
    assert.ok(error === undefined || (error instanceof DeployError && error.kind === 'fetch'), `${relative(corpus, file)}: ${error?.stack}`);
    outcomes.set(relative(corpus, file), error ? error.message : (await readdir(staging, { recursive: true })).sort().join(','));
  }
  await assert.rejects(access('/tmp/evil-evilarc.txt'), 'evilarc wrote nothing to /tmp');
  for (const refused of ['evilarc-unix.zip', 'evilarc-win.zip', 'snyk-zip-slip.zip', 'snyk-zip-slip-win.zip', 'zipper-zbsm.zip', 'zipper-42.zip', 'go-symlink.zip', 'corkami-dual.zip']) {
    assert.match(outcomes.get(refused) ?? '', /rejected|not a readable zip/, refused);
  }
  assert.match(outcomes.get('zipper-nasty.zip') ?? '', /control character in its name|absolute/);
  assert.equal(outcomes.get('go-utf8-osx.zip'), '\u4e16\u754c');
  assert.equal(outcomes.get('corkami-drive.zip'), '', 'the volume label is not a file');
  assert.equal(outcomes.get('corkami-unicode.zip'), '\u{1f60a}');
});
