// Drift: the live tree no longer what its release's manifest says (a file edited, added or
// removed by hand on the server). Checked often, so cheaply: every entry is lstat'ed, and a file
// is hashed only when its size, mode, inode, mtime or ctime differ from what it had when last
// found intact (ctime cannot be set back from user space: an edit always changes it). The first
// check of a release hashes every file, as `repo-deploy verify` does.
import { lstatSync, readdirSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { timeSlices } from '../base/time-slices.js';
import { readManifest, sha256Of, type ManifestDifferences, type ManifestEntry } from './manifest.js';

const synchronousSliceMs = 20;

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
  /** False when nothing stirred in the watched tree since the last walk: this is that walk's report. */
  walked: boolean;
}

/** The longest a watched tree goes without a full walk. */
export const fullWalkEveryMs = 3_600_000;

const keyOf = (info: Stats): StatKey => ({ size: info.size, mode: info.mode, ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs });
const sameKey = (a: StatKey | undefined, b: StatKey) => a !== undefined && a.size === b.size && a.mode === b.mode && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/** One app's watcher: remembers, per release, the stat of each file it last found intact. */
export class DriftWatcher {
  /** Per release: its manifest's entries (read once: a manifest never changes) and the stat of each file last found intact. */
  private baseline: { release: string; expected: ManifestEntry[]; files: Map<string, StatKey> } | undefined;
  private watcher: FSWatcher | undefined;
  /** Something moved in the watched tree since the last walk (or it is not watched). */
  private stirred = true;
  private lastWalk: { at: number; report: DriftReport } | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Compares the release directory with its manifest; `isIgnored` paths (verify-ignore) are not differences. */
  async check(releaseDirectory: string, release: string, manifestFile: string, isIgnored: (path: string) => boolean): Promise<DriftReport> {
    if (this.baseline?.release !== release) {
      const entries = await readManifest(manifestFile);
      this.baseline = { release, expected: entries.filter((entry) => !isIgnored(entry.path)), files: new Map() };
      this.lastWalk = undefined;
      this.watch(releaseDirectory);
    }
    if (this.watcher && !this.stirred && this.lastWalk && this.now() - this.lastWalk.at < fullWalkEveryMs) return { ...this.lastWalk.report, hashed: 0, walked: false };
    this.stirred = this.watcher === undefined;
    const report = await this.walk(releaseDirectory, isIgnored);
    this.lastWalk = { at: this.now(), report };
    return report;
  }

  /** Stops watching (the app's loop ended). */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private watch(releaseDirectory: string): void {
    this.close();
    this.stirred = true;
    try {
      const watcher = watch(releaseDirectory, { recursive: true, persistent: false }, () => (this.stirred = true));
      watcher.on('error', () => {
        // Gone (the release was pruned) or past the inotify limit: every check walks.
        if (this.watcher === watcher) this.close();
        this.stirred = true;
      });
      this.watcher = watcher;
    } catch {
      this.watcher = undefined;
    }
  }

  private async walk(releaseDirectory: string, isIgnored: (path: string) => boolean): Promise<DriftReport> {
    const { expected, files: known } = this.baseline!;
    const found = new Map<string, Stats>();
    // Synchronous calls in slices between which the event loop runs (a check, /metrics): an
    // asynchronous lstat per entry cost ten times the call itself.
    const slices = timeSlices(synchronousSliceMs);
    const walk = async (relative: string): Promise<void> => {
      for (const name of readdirSync(join(releaseDirectory, relative))) {
        const path = relative ? `${relative}/${name}` : name;
        const info = lstatSync(join(releaseDirectory, path));
        found.set(path, info);
        if (info.isDirectory()) await walk(path);
        if (slices.due) await slices.next();
      }
    };
    await walk('');
    const report: DriftReport = { changed: [], missing: [], extra: [], hashed: 0, entries: expected.length, walked: true };
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
  if ((await sha256Of(absolute, info.size)) !== entry.sha256) return false;
  known.set(entry.path, key);
  return true;
}
