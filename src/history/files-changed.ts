// Files added, changed and removed between two releases, from their manifests (no tree is read
// again): a path is changed when its type, sha256, mode or link target differs.
import { readFile } from 'node:fs/promises';
import type { ManifestEntry } from '../verify/manifest.js';

export interface FilesChanged {
  added: number;
  changed: number;
  removed: number;
  /** Up to ten paths of each, for a reader; the counts are whole. */
  sample: { added: string[]; changed: string[]; removed: string[] };
}

const sampleSize = 10;

async function readEntries(path: string | undefined): Promise<Map<string, ManifestEntry> | undefined> {
  if (!path) return new Map();
  try {
    const manifest = JSON.parse(await readFile(path, 'utf8')) as { entries: ManifestEntry[] };
    return new Map(manifest.entries.filter((entry) => entry.type !== 'directory').map((entry) => [entry.path, entry]));
  } catch {
    return undefined; // an older release without a manifest: nothing can be said
  }
}

/** Undefined when either manifest cannot be read. `fromManifest` undefined: a first deploy (all added). */
export async function filesChanged(fromManifest: string | undefined, toManifest: string): Promise<FilesChanged | undefined> {
  const [before, after] = await Promise.all([readEntries(fromManifest), readEntries(toManifest)]);
  if (!before || !after) return undefined;
  const result: FilesChanged = { added: 0, changed: 0, removed: 0, sample: { added: [], changed: [], removed: [] } };
  const note = (kind: 'added' | 'changed' | 'removed', path: string) => {
    result[kind]++;
    if (result.sample[kind].length < sampleSize) result.sample[kind].push(path);
  };
  for (const [path, entry] of after) {
    const old = before.get(path);
    if (!old) note('added', path);
    else if (old.type !== entry.type || old.sha256 !== entry.sha256 || old.mode !== entry.mode || old.target !== entry.target) note('changed', path);
  }
  for (const path of before.keys()) if (!after.has(path)) note('removed', path);
  return result;
}
