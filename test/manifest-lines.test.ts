// The history's file counts come from comparing two manifests line by line (only the lines that
// differ are parsed). It must say exactly what the whole parse says, for any two trees, and fall
// back to the whole parse for manifests written in one line by earlier versions.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { diffEntries, filesChanged, type FileChange } from '../src/history/files-changed.js';
import { compareTreeOrder, diffManifestLines, filesOfLinedManifest, isLinedManifest } from '../src/history/manifest-lines.js';
import { manifestBytes, type ManifestEntry } from '../src/verify/manifest.js';

/** A seeded generator: a failure names the seed that reproduces it. */
function random(seed: number): () => number {
  let value = seed;
  return () => {
    value = (value * 1103515245 + 12345) % 2 ** 31;
    return value / 2 ** 31;
  };
}

// Names chosen to sort differently by whole path and by tree order ("a.txt" < "a/x" as strings,
// "a" before "a/x" before "a.txt" in a tree), with characters JSON escapes and non-ASCII ones.
const names = ['a', 'a.txt', 'a-b', 'b', 'é', 'q"uote', 'back\\slash', 'Z', '0', 'long-name-'.repeat(8)].sort();

/** A tree as describeTree lists it: a directory before what it holds, names sorted. */
function randomTree(next: () => number, depth = 0, prefix = ''): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  for (const name of names) {
    const roll = next();
    if (roll < 0.45) continue;
    const path = prefix ? `${prefix}/${name}` : name;
    if (roll < 0.6 && depth < 3) {
      entries.push({ path, type: 'directory', mode: 0o755 });
      entries.push(...randomTree(next, depth + 1, path));
    } else if (roll < 0.65) entries.push({ path, type: 'symlink', mode: 0o777, target: `../t${Math.floor(next() * 3)}` });
    else {
      const content = Math.floor(next() * 4);
      entries.push({ path, type: 'file', size: content * 10, mode: next() < 0.9 ? 0o644 : 0o755, sha256: String(content).repeat(64) });
    }
  }
  return entries;
}

/** Some entries changed, removed, added, a file made a directory: another tree sharing most lines. */
function mutate(next: () => number, tree: ManifestEntry[]): ManifestEntry[] {
  const result: ManifestEntry[] = [];
  for (const entry of tree) {
    const roll = next();
    if (roll < 0.08 && entry.type !== 'directory') continue;
    if (roll < 0.16 && entry.type === 'file') result.push({ ...entry, sha256: 'f'.repeat(64), size: 99 });
    else if (roll < 0.2 && entry.type === 'file') result.push({ ...entry, mode: 0o700 });
    else if (roll < 0.22 && entry.type === 'file') result.push({ path: entry.path, type: 'directory', mode: 0o755 }, { path: `${entry.path}/new`, type: 'file', size: 1, mode: 0o644, sha256: 'e'.repeat(64) });
    else result.push(entry);
  }
  // Added at the end of the tree (after every other path in tree order).
  if (next() < 0.5) result.push({ path: 'ÿ-added', type: 'file', size: 5, mode: 0o644, sha256: 'd'.repeat(64) });
  return result;
}

const sorted = (changes: FileChange[]) => [...changes].sort((a, b) => compareTreeOrder(a.path, b.path) || a.kind.localeCompare(b.kind));

test('two lined manifests of random trees give the changes the whole parse gives', () => {
  for (let seed = 1; seed <= 400; seed++) {
    const next = random(seed);
    const before = randomTree(next);
    const after = next() < 0.1 ? randomTree(next) : mutate(next, before);
    const [oldBytes, newBytes] = [manifestBytes(before), manifestBytes(after)];
    assert.ok(isLinedManifest(oldBytes) && isLinedManifest(newBytes));
    assert.deepEqual(JSON.parse(oldBytes.toString('utf8')), { version: 1, entries: before }, 'a lined manifest is still one JSON document');
    assert.deepEqual(sorted(diffManifestLines(oldBytes, newBytes)), sorted(diffEntries(before, after)), `seed ${seed}`);
  }
});

test('a first deploy counts the files of its manifest as comparing it with an empty one does, even where a name spells a directory\'s type', () => {
  const spelled = ',"type":"directory","mode":493}';
  for (let seed = 1; seed <= 200; seed++) {
    const next = random(seed);
    const tree = [...randomTree(next), { path: `zz${spelled}`, type: 'file', size: 3, mode: 0o644, sha256: 'f'.repeat(64) }, { path: `zz${spelled}-dir`, type: 'directory', mode: 0o755 }] satisfies ManifestEntry[];
    const added = diffManifestLines(manifestBytes([]), manifestBytes(tree)).map((change) => change.path);
    assert.equal(added.length, diffEntries([], tree).length);
    assert.deepEqual(filesOfLinedManifest(manifestBytes(tree), 10), { count: added.length, sample: added.slice(0, 10) }, `seed ${seed}`);
  }
  assert.deepEqual(filesOfLinedManifest(manifestBytes([]), 10), { count: 0, sample: [] });
});

test('empty manifests, and a manifest against itself, have nothing to say but what differs', () => {
  const tree: ManifestEntry[] = [{ path: 'a', type: 'file', size: 1, mode: 0o644, sha256: 'a'.repeat(64) }];
  assert.deepEqual(diffManifestLines(manifestBytes([]), manifestBytes([])), []);
  assert.deepEqual(diffManifestLines(manifestBytes(tree), manifestBytes(tree)), []);
  assert.deepEqual(diffManifestLines(manifestBytes([]), manifestBytes(tree)), [{ path: 'a', kind: 'added', sizeAfter: 1 }]);
  assert.deepEqual(diffManifestLines(manifestBytes(tree), manifestBytes([])), [{ path: 'a', kind: 'removed', sizeBefore: 1 }]);
});

test('a live manifest written in one line by an earlier version is parsed whole; a junk one says nothing', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'manifest-lines-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const before: ManifestEntry[] = [
    { path: 'a', type: 'file', size: 1, mode: 0o644, sha256: 'a'.repeat(64) },
    { path: 'b', type: 'file', size: 1, mode: 0o644, sha256: 'b'.repeat(64) },
  ];
  const after: ManifestEntry[] = [{ ...before[0]!, sha256: 'c'.repeat(64) }, { path: 'c', type: 'file', size: 2, mode: 0o644, sha256: 'c'.repeat(64) }];
  const written = { bytes: manifestBytes(after) };
  const oneLine = join(directory, 'one-line.json');
  await writeFile(oneLine, JSON.stringify({ version: 1, entries: before }) + '\n');
  assert.deepEqual(await filesChanged(oneLine, written), { added: 1, changed: 1, removed: 1, sample: { added: ['c'], changed: ['a'], removed: ['b'] } });

  const junk = join(directory, 'junk.json');
  await writeFile(junk, Buffer.concat([manifestBytes(before).subarray(0, 30), Buffer.from('not json,\n'), manifestBytes(before).subarray(30)]));
  assert.equal(await filesChanged(junk, written), undefined);
  assert.equal(await filesChanged(join(directory, 'absent.json'), written), undefined);
  assert.deepEqual((await filesChanged(undefined, written))?.added, 2);
});
