// Each release's manifest (path, size, mode, sha256 of every file; symlinks with their target),
// written beside it when it is staged, so `repo-deploy verify` can prove that the live tree is
// what was deployed: every changed, missing or extra file is listed.
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../base/atomic-file.js';
import { timeSlices } from '../base/time-slices.js';
import type { ManifestEntry } from '../core/manifest-entry.js';

export type { ManifestEntry };

export const manifestPath = (releasesDirectory: string, release: string) => join(releasesDirectory, `.manifest-${release}.json`);

/** A release's manifest entries, as writeManifest wrote them. */
export async function readManifest(path: string): Promise<ManifestEntry[]> {
  return (JSON.parse(await readFile(path, 'utf8')) as { entries: ManifestEntry[] }).entries;
}

// Small files are read synchronously, in slices of this many milliseconds between which the
// event loop runs: an asynchronous read per small file cost more than the file (measured: 4.4 s
// for 8,000 files and 128 MiB, as long as extracting them).
const smallFileBytes = 1 << 20;
const synchronousSliceMs = 20;

/** A file's sha256: small files read at once (synchronously: see above), large ones streamed. */
export async function sha256Of(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  if (size < smallFileBytes) return hash.update(readFileSync(path)).digest('hex');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Every entry of a tree, in path order. `knownHashes` are the sha256 of files whose bytes the
 * caller has just written (the extraction hashed them on the way): they are not read back.
 */
export async function describeTree(root: string, knownHashes?: ReadonlyMap<string, string>): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  const slices = timeSlices(synchronousSliceMs);
  const walk = async (relative: string) => {
    for (const name of readdirSync(join(root, relative)).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const absolute = join(root, path);
      const info = lstatSync(absolute);
      const mode = info.mode & 0o7777;
      if (info.isSymbolicLink()) entries.push({ path, type: 'symlink', mode, target: readlinkSync(absolute) });
      else if (info.isDirectory()) {
        entries.push({ path, type: 'directory', mode });
        await walk(path);
      } else entries.push({ path, type: 'file', size: info.size, mode, sha256: knownHashes?.get(path) ?? (await sha256Of(absolute, info.size)) });
      if (slices.due) await slices.next();
    }
  };
  await walk('');
  return entries;
}

/**
 * The order of `paths` as describeTree walks, as indices into it: each directory's names sorted
 * with `<`, a directory before what it holds. That is the order of whole paths compared with "/"
 * below every character a name can hold ("\0", which no name holds): one key per path, where
 * splitting both paths at every comparison took 0.47 s for 28,000 entries.
 */
export function inManifestOrder(paths: readonly string[]): Uint32Array {
  const keys = paths.map((path) => path.replaceAll('/', '\0'));
  return new Uint32Array(paths.length).map((_, index) => index).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
}

/** A manifest as written: its bytes (the history compares them line by line without reading the file back). */
export interface WrittenManifest {
  bytes: Buffer;
}

export const manifestHeader = '{"version":1,"entries":[\n';
export const manifestTrailer = '\n]}\n';

/**
 * A manifest's bytes: one JSON document with one entry per line, so that two manifests are
 * compared line by line, parsing only the lines that differ (history/manifest-lines.ts; parsing
 * a 20,000-entry manifest cost an update 25-30 ms). Manifests written before were one line; both
 * are read by readManifest. Made in pieces of about 64 KiB: the lines of 28,000 entries, joined
 * and then copied, were three copies of 5 MB at once.
 */
export function manifestBytes(entries: Iterable<ManifestEntry>): Buffer {
  const pieces: Buffer[] = [];
  let text = manifestHeader;
  let first = true;
  for (const entry of entries) {
    text += (first ? '' : ',\n') + JSON.stringify(entry);
    first = false;
    if (text.length >= 64 * 1024) {
      pieces.push(Buffer.from(text));
      text = '';
    }
  }
  pieces.push(Buffer.from(text + manifestTrailer));
  return Buffer.concat(pieces);
}

/**
 * Writes the release's manifest; returns what it wrote. `staged.entries`, when the fetcher knows
 * them (a zip's extraction), are the tree as written: a second walk of 28,000 entries cost a
 * first deploy 0.3 to 0.4 s. Otherwise the release is walked, and `staged.fileHashes` spare
 * reading back the files the fetcher hashed.
 */
export async function writeManifest(releaseDirectory: string, path: string, staged?: { fileHashes?: ReadonlyMap<string, string>; entries?: Iterable<ManifestEntry> }): Promise<WrittenManifest> {
  const bytes = manifestBytes(staged?.entries ?? (await describeTree(releaseDirectory, staged?.fileHashes)));
  await writeFileAtomically(path, bytes);
  return { bytes };
}

export interface ManifestDifferences {
  changed: string[];
  missing: string[];
  extra: string[];
}

/**
 * Compares a release with its manifest. `ignored` are glob patterns of paths the operator's hooks
 * add or change (a shared/ link, say): they are not differences.
 */
export async function compareWithManifest(liveDirectory: string, path: string, ignored: readonly string[] = []): Promise<ManifestDifferences> {
  // Loaded only when patterns are set: every check imports this module (to write manifests).
  const isIgnored = ignored.length ? (await import('../base/lazy/picomatch.js')).picomatch([...ignored], { dot: true }) : () => false;
  const expected = (await readManifest(path)).filter((entry) => !isIgnored(entry.path));
  const actual = new Map((await describeTree(liveDirectory)).filter((entry) => !isIgnored(entry.path)).map((entry) => [entry.path, entry]));
  const differences: ManifestDifferences = { changed: [], missing: [], extra: [] };
  for (const entry of expected) {
    const found = actual.get(entry.path);
    actual.delete(entry.path);
    if (!found) differences.missing.push(entry.path);
    else if (JSON.stringify(found) !== JSON.stringify(entry)) differences.changed.push(entry.path);
  }
  differences.extra.push(...actual.keys());
  return differences;
}
