// Drift: the live tree no longer what its release's manifest says (a file edited, added or
// removed by hand on the server). Checked often, so cheaply: every entry is lstat'ed, and a file
// is hashed only when its size, mode, inode, mtime or ctime differ from what it had when last
// found intact (ctime cannot be set back from user space: an edit always changes it). The first
// check of a release hashes every file, as `repo-deploy verify` does.
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ManifestDifferences, ManifestEntry } from './manifest.js';

interface StatKey {
  size: number;
  mode: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface DriftReport extends ManifestDifferences {
  /** Files whose bytes were read this time (the rest were known intact by their stat). */
  hashed: number;
  entries: number;
}

const keyOf = (info: Stats): StatKey => ({ size: info.size, mode: info.mode, ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs });
const sameKey = (a: StatKey | undefined, b: StatKey) => a !== undefined && a.size === b.size && a.mode === b.mode && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** One app's watcher: remembers, per release, the stat of each file it last found intact. */
export class DriftWatcher {
  private baseline: { release: string; files: Map<string, StatKey> } | undefined;

  /** Compares the release directory with its manifest; `isIgnored` paths (verify-ignore) are not differences. */
  async check(releaseDirectory: string, release: string, manifestFile: string, isIgnored: (path: string) => boolean): Promise<DriftReport> {
    if (this.baseline?.release !== release) this.baseline = { release, files: new Map() };
    const known = this.baseline.files;
    const expected = (JSON.parse(await readFile(manifestFile, 'utf8')) as { entries: ManifestEntry[] }).entries.filter((entry) => !isIgnored(entry.path));
    const found = new Map<string, Stats>();
    const walk = async (relative: string): Promise<void> => {
      for (const name of await readdir(join(releaseDirectory, relative))) {
        const path = relative ? `${relative}/${name}` : name;
        const info = await lstat(join(releaseDirectory, path));
        found.set(path, info);
        if (info.isDirectory()) await walk(path);
      }
    };
    await walk('');
    const report: DriftReport = { changed: [], missing: [], extra: [], hashed: 0, entries: expected.length };
    for (const entry of expected) {
      const info = found.get(entry.path);
      found.delete(entry.path);
      if (!info) {
        report.missing.push(entry.path);
        continue;
      }
      if (!(await matches(entry, info, join(releaseDirectory, entry.path), known, report))) {
        known.delete(entry.path);
        report.changed.push(entry.path);
      }
    }
    report.extra.push(...[...found.keys()].filter((path) => !isIgnored(path)));
    return report;
  }
}

async function matches(entry: ManifestEntry, info: Stats, absolute: string, known: Map<string, StatKey>, report: DriftReport): Promise<boolean> {
  if ((info.mode & 0o7777) !== entry.mode) return false;
  if (entry.type === 'directory') return info.isDirectory();
  if (entry.type === 'symlink') return info.isSymbolicLink() && (await readlink(absolute)) === entry.target;
  if (!info.isFile() || info.size !== entry.size) return false;
  const key = keyOf(info);
  if (sameKey(known.get(entry.path), key)) return true;
  report.hashed++;
  if ((await sha256Of(absolute)) !== entry.sha256) return false;
  known.set(entry.path, key);
  return true;
}
