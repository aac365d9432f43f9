// Files added, changed and removed between two releases, from their manifests (no tree is read
// again): a path is changed when its type, sha256, mode or link target differs.
import { readFile } from 'node:fs/promises';
import { readManifest, type ManifestEntry, type WrittenManifest } from '../verify/manifest.js';
import { diffManifestLines, filesOfLinedManifest, isLinedManifest } from './manifest-lines.js';

export interface FilesChanged {
  added: number;
  changed: number;
  removed: number;
  /** Up to ten paths of each, for a reader; the counts are whole. */
  sample: { added: string[]; changed: string[]; removed: string[] };
}

/** Every path that differs, with its size before and after (bytes; undefined for a link or an absent side). */
export interface FileChange {
  path: string;
  kind: 'added' | 'changed' | 'removed';
  sizeBefore?: number;
  sizeAfter?: number;
}

const sampleSize = 10;

export async function readManifestEntries(path: string | undefined): Promise<ManifestEntry[] | undefined> {
  if (!path) return [];
  try {
    return await readManifest(path);
  } catch {
    return undefined; // an older release without a manifest: nothing can be said
  }
}

/**
 * What differs between two lists of manifest entries (directories left out), in path order.
 * Manifests are written in path order (describeTree), so the two lists are walked side by side;
 * lists in another order are sorted first.
 */
export function diffEntries(before: readonly ManifestEntry[], after: readonly ManifestEntry[]): FileChange[] {
  const files = (entries: readonly ManifestEntry[]) => {
    const kept = entries.filter((entry) => entry.type !== 'directory');
    return kept.every((entry, index) => index === 0 || kept[index - 1]!.path < entry.path) ? kept : [...kept].sort((a, b) => (a.path < b.path ? -1 : 1));
  };
  const [old, next] = [files(before), files(after)];
  const changes: FileChange[] = [];
  let [i, j] = [0, 0];
  while (i < old.length || j < next.length) {
    const was = old[i];
    const entry = next[j];
    if (entry && (!was || entry.path < was.path)) {
      changes.push({ path: entry.path, kind: 'added', sizeAfter: entry.size });
      j++;
    } else if (was && (!entry || was.path < entry.path)) {
      changes.push({ path: was.path, kind: 'removed', sizeBefore: was.size });
      i++;
    } else {
      if (was!.type !== entry!.type || was!.sha256 !== entry!.sha256 || was!.mode !== entry!.mode || was!.target !== entry!.target) changes.push({ path: entry!.path, kind: 'changed', sizeBefore: was!.size, sizeAfter: entry!.size });
      i++;
      j++;
    }
  }
  return changes;
}

/**
 * Undefined when the live manifest cannot be read. `fromManifest` undefined: a first deploy (all
 * added). Two lined manifests are compared line by line; others are parsed whole.
 */
export async function filesChanged(fromManifest: string | undefined, after: WrittenManifest): Promise<FilesChanged | undefined> {
  if (!fromManifest && isLinedManifest(after.bytes)) {
    const files = filesOfLinedManifest(after.bytes, sampleSize);
    return { added: files.count, changed: 0, removed: 0, sample: { added: files.sample, changed: [], removed: [] } };
  }
  let changes: FileChange[] | undefined;
  if (fromManifest && isLinedManifest(after.bytes)) {
    const before = await readFile(fromManifest).catch(() => undefined);
    if (!before) return undefined;
    try {
      if (isLinedManifest(before)) changes = diffManifestLines(before, after.bytes);
    } catch {
      // A line that is not an entry: the whole parse below says what can be said.
    }
  }
  if (!changes) {
    const before = await readManifestEntries(fromManifest);
    if (!before) return undefined;
    changes = diffEntries(before, (JSON.parse(after.bytes.toString('utf8')) as { entries: ManifestEntry[] }).entries);
  }
  const result: FilesChanged = { added: 0, changed: 0, removed: 0, sample: { added: [], changed: [], removed: [] } };
  for (const change of changes) {
    result[change.kind]++;
    if (result.sample[change.kind].length < sampleSize) result.sample[change.kind].push(change.path);
  }
  return result;
}
