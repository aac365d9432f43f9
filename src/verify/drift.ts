// Drift: the live tree no longer what its release's manifest says (a file edited, added or
// removed by hand on the server). Checked often, so cheaply: every entry is lstat'ed, and a file
// is hashed only when its size, mode, inode, mtime or ctime differ from what it had when last
// found intact (ctime cannot be set back from user space: an edit always changes it). The first
// check of a release hashes every file, as `repo-deploy verify` does.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { join } from 'node:path';
import { sha256Of, type ManifestDifferences, type ManifestEntry } from './manifest.js';

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
}

const keyOf = (info: Stats): StatKey => ({ size: info.size, mode: info.mode, ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs });
const sameKey = (a: StatKey | undefined, b: StatKey) => a !== undefined && a.size === b.size && a.mode === b.mode && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/** One app's watcher: remembers, per release, the stat of each file it last found intact. */
export class DriftWatcher {
  /** Per release: its manifest's entries (read once: a manifest never changes) and the stat of each file last found intact. */
  private baseline: { release: string; expected: ManifestEntry[]; files: Map<string, StatKey> } | undefined;

  /** Compares the release directory with its manifest; `isIgnored` paths (verify-ignore) are not differences. */
  async check(releaseDirectory: string, release: string, manifestFile: string, isIgnored: (path: string) => boolean): Promise<DriftReport> {
    if (this.baseline?.release !== release) {
      const entries = (JSON.parse(await readFile(manifestFile, 'utf8')) as { entries: ManifestEntry[] }).entries;
      this.baseline = { release, expected: entries.filter((entry) => !isIgnored(entry.path)), files: new Map() };
    }
    const { expected, files: known } = this.baseline;
    const found = new Map<string, Stats>();
    // Synchronous calls in slices between which the event loop runs (a check, /metrics): an
    // asynchronous lstat per entry cost ten times the call itself.
    let sliceStarted = performance.now();
    const walk = async (relative: string): Promise<void> => {
      for (const name of readdirSync(join(releaseDirectory, relative))) {
        const path = relative ? `${relative}/${name}` : name;
        const info = lstatSync(join(releaseDirectory, path));
        found.set(path, info);
        if (info.isDirectory()) await walk(path);
        if (performance.now() - sliceStarted > synchronousSliceMs) {
          await yieldToEventLoop();
          sliceStarted = performance.now();
        }
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
  if ((await sha256Of(absolute, info.size)) !== entry.sha256) return false;
  known.set(entry.path, key);
  return true;
}
