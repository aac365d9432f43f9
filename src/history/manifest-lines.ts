// Two manifests compared line by line (writeManifest puts one entry per line, in the tree order
// describeTree walks): a line that is byte for byte the same in both is an unchanged entry and is
// never parsed, so an update that changed 2% of 20,000 files parses about 800 small lines instead
// of two 2.8 MB documents. Manifests written in one line (before this format) are not lined:
// the caller then parses them whole (diffEntries).
import { manifestHeader, manifestTrailer, type ManifestEntry } from '../verify/manifest.js';
import type { FileChange } from './files-changed.js';

const header = Buffer.from(manifestHeader);
const trailer = Buffer.from(manifestTrailer);
const newline = 0x0a;
const comma = 0x2c;

/** Whether `bytes` is a manifest of one entry per line (manifestBytes). */
export function isLinedManifest(bytes: Buffer): boolean {
  return bytes.length >= header.length + trailer.length && bytes.subarray(0, header.length).equals(header) && bytes.subarray(bytes.length - trailer.length).equals(trailer);
}

/** Paths in describeTree's order: name by name, a directory before what it holds. */
export function compareTreeOrder(a: string, b: string): number {
  const [left, right] = [a.split('/'), b.split('/')];
  for (let index = 0; index < Math.min(left.length, right.length); index++) {
    if (left[index] !== right[index]) return left[index]! < right[index]! ? -1 : 1;
  }
  return left.length - right.length;
}

/**
 * How many bytes from a[aStart] and b[bStart] on are the same (at most `length`): memcmp over
 * ranges that double while they match, then halved over the one that does not. An update that
 * changed a few files runs a few hundred of these instead of a loop over every line, which cost
 * as much as the parse it replaced in a process that runs it once (its code not yet optimised).
 */
function sameBytes(a: Buffer, aStart: number, b: Buffer, bStart: number, length: number): number {
  let same = 0;
  for (let step = 256; same < length; step *= 2) {
    const span = Math.min(step, length - same);
    if (a.compare(b, bStart + same, bStart + same + span, aStart + same, aStart + same + span) === 0) {
      same += span;
      continue;
    }
    let [low, high] = [same, same + span]; // the same up to low; a difference before high
    while (high - low > 1) {
      const middle = (low + high) >> 1;
      if (a.compare(b, bStart + low, bStart + middle, aStart + low, aStart + middle) === 0) low = middle;
      else high = middle;
    }
    return low;
  }
  return length;
}

/** The entry on the line starting at `start` (its newline and trailing comma left off), and where the next line starts. */
function lineAt(bytes: Buffer, start: number, end: number): { entry: ManifestEntry; next: number } {
  let lineEnd = bytes.indexOf(newline, start);
  if (lineEnd < 0 || lineEnd > end) lineEnd = end;
  const contentEnd = bytes[lineEnd - 1] === comma ? lineEnd - 1 : lineEnd;
  return { entry: JSON.parse(bytes.toString('utf8', start, contentEnd)) as ManifestEntry, next: lineEnd + 1 };
}

// A directory's line, from its type on: in a path, JSON escapes every quote (`,\"`), so a comma
// followed by a quote is always a key's start.
const directoryType = Buffer.from(',"type":"directory",');

/**
 * The files of a lined manifest (directories left out), as a first deploy adds them: how many,
 * and the paths of the first `sampleSize`. Only the sample's lines are parsed: parsing 28,000
 * lines cost a first deploy 50 to 100 ms.
 */
export function filesOfLinedManifest(bytes: Buffer, sampleSize: number): { count: number; sample: string[] } {
  const end = bytes.length - trailer.length;
  const sample: string[] = [];
  let count = 0;
  let directoryAt = bytes.indexOf(directoryType, header.length); // the next directory's line, found once
  for (let at = header.length; at < end; ) {
    const lineEnd = Math.min(end, bytes.indexOf(newline, at) >>> 0);
    if (directoryAt >= 0 && directoryAt < at) directoryAt = bytes.indexOf(directoryType, at);
    if (directoryAt < 0 || directoryAt > lineEnd) {
      count++;
      if (sample.length < sampleSize) sample.push(lineAt(bytes, at, end).entry.path);
    }
    at = lineEnd + 1;
  }
  return { count, sample };
}

/**
 * What differs between two lined manifests (directories left out), as diffEntries says it. An
 * entry that is not JSON throws: the caller falls back to parsing both whole.
 */
export function diffManifestLines(before: Buffer, after: Buffer): FileChange[] {
  // Each side from its first entry line to the trailer's newline (where the last entry line ends).
  const [oldEnd, nextEnd] = [before.length - trailer.length, after.length - trailer.length];
  let [oldAt, nextAt] = [header.length, header.length];
  const changes: FileChange[] = [];
  while (oldAt < oldEnd || nextAt < nextEnd) {
    if (oldAt < oldEnd && nextAt < nextEnd) {
      const same = sameBytes(before, oldAt, after, nextAt, Math.min(oldEnd - oldAt, nextEnd - nextAt));
      if (oldAt + same >= oldEnd && nextAt + same >= nextEnd) break;
      // Both sides move to the start of the line the first difference is on (the same offset in each).
      const lineStart = Math.max(oldAt, before.lastIndexOf(newline, oldAt + same - 1) + 1);
      nextAt += lineStart - oldAt;
      oldAt = lineStart;
    }
    const was = oldAt < oldEnd ? lineAt(before, oldAt, oldEnd) : undefined;
    const now = nextAt < nextEnd ? lineAt(after, nextAt, nextEnd) : undefined;
    // Directories are not files: passed over on either side, as diffEntries leaves them out.
    if (was?.entry.type === 'directory') oldAt = was.next;
    else if (now?.entry.type === 'directory') nextAt = now.next;
    else {
      const order = !was ? 1 : !now ? -1 : compareTreeOrder(was.entry.path, now.entry.path);
      if (order < 0) {
        changes.push({ path: was!.entry.path, kind: 'removed', sizeBefore: was!.entry.size });
        oldAt = was!.next;
      } else if (order > 0) {
        changes.push({ path: now!.entry.path, kind: 'added', sizeAfter: now!.entry.size });
        nextAt = now!.next;
      } else {
        const [a, b] = [was!.entry, now!.entry];
        if (a.type !== b.type || a.sha256 !== b.sha256 || a.mode !== b.mode || a.target !== b.target) changes.push({ path: b.path, kind: 'changed', sizeBefore: a.size, sizeAfter: b.size });
        [oldAt, nextAt] = [was!.next, now!.next];
      }
    }
  }
  return changes;
}
