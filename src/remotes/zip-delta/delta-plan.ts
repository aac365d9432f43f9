// Which bytes of a new archive can be copied from the previous one and which must be fetched.
// Only an entry's compressed data is ever copied, and only when its name, CRC-32, sizes and
// method are the same in both archives; everything else (every local header, data descriptor,
// changed entry, and whatever lies between entries) is fetched from the server, because even an
// unchanged file's local header differs between two builds (its extended-timestamp field holds
// the file's new mtime; docs/zip-delta-design.md).
import type { CentralDirectory, CentralEntry } from './central-directory.js';

/** [start, end) of the archive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** An unchanged entry's compressed data, copied from the base archive. */
export interface Reuse {
  entry: CentralEntry;
  /** The same entry in the base archive. */
  base: CentralEntry;
  /** Where its data starts in the new archive (its local header's offset plus the header's length). */
  dataStart: number;
  /** The length its local header must have (checked once fetched). */
  headerLength: number;
  /** With a data descriptor (flag bit 3): the descriptor assumed to follow, with its signature. */
  descriptorLength: number;
}

export interface DeltaPlan {
  reuse: Reuse[];
  fetch: ByteRange[];
}

export interface PlanLimits {
  /** Unchanged data shorter than this is fetched anyway: a separate range costs more than its bytes. */
  smallestReuse: number;
  /** At most this many ranges: the smallest reuses are given up until the ranges fit. */
  maxRanges: number;
  /** A fetched range longer than this is split (a part is held in memory while it is written). */
  longestRange: number;
}

/** Why a delta is not possible or not worth it: the archive is then downloaded whole, and the log says why. */
export class DeltaAbandoned extends Error {}

const localHeaderFixedLength = 30;
const encrypted = 0x1;
const hasDataDescriptor = 0x8;

const sameData = (a: CentralEntry, b: CentralEntry) =>
  a.crc32 === b.crc32 && a.compressedSize === b.compressedSize && a.uncompressedSize === b.uncompressedSize && a.method === b.method && ((a.flags | b.flags) & encrypted) === 0;

/**
 * Plans the delta of `next` (whose `present` ranges, sorted, are already on disk) over `base`.
 * Entries whose regions overlap or run past the central directory abandon the delta.
 */
export function planDelta(next: CentralDirectory, base: CentralDirectory, present: readonly ByteRange[], limits: PlanLimits): DeltaPlan {
  const baseByName = new Map<string, CentralEntry>();
  for (const entry of base.entries) baseByName.set(entry.key, entry);
  const ordered = [...next.entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  const end = next.offset;
  const overlapsPresent = (start: number, stop: number) => present.some((range) => range.start < stop && start < range.end);
  let candidates: Reuse[] = [];
  ordered.forEach((entry, index) => {
    const regionEnd = index + 1 < ordered.length ? ordered[index + 1]!.localHeaderOffset : next.offset;
    const region = regionEnd - entry.localHeaderOffset;
    if (region < localHeaderFixedLength + entry.nameLength + entry.compressedSize) {
      throw new DeltaAbandoned(`the entries' regions overlap or run into the central directory (at offset ${entry.localHeaderOffset})`);
    }
    const base = baseByName.get(entry.key);
    if (!base || !sameData(entry, base) || entry.compressedSize < limits.smallestReuse) return;
    // With a data descriptor the header's length is not known from the central directory alone:
    // the common descriptor (signature, CRC, two 4-byte sizes) is assumed, and checked once fetched.
    const descriptorLength = entry.flags & hasDataDescriptor ? 16 : 0;
    const headerLength = region - entry.compressedSize - descriptorLength;
    const extraLength = headerLength - localHeaderFixedLength - entry.nameLength;
    if (extraLength < 0 || extraLength > 0xffff) return;
    const dataStart = entry.localHeaderOffset + headerLength;
    if (dataStart + entry.compressedSize > end || overlapsPresent(dataStart, dataStart + entry.compressedSize)) return;
    candidates.push({ entry, base, dataStart, headerLength, descriptorLength });
  });
  // Each reuse splits a range in two: keep the largest ones that fit in maxRanges.
  if (candidates.length + 1 > limits.maxRanges) {
    const kept = new Set([...candidates].sort((a, b) => b.entry.compressedSize - a.entry.compressedSize).slice(0, Math.max(0, limits.maxRanges - 1)));
    candidates = candidates.filter((reuse) => kept.has(reuse));
  }
  const missing: ByteRange[] = [];
  let cursor = 0;
  for (const reuse of candidates) {
    if (reuse.dataStart > cursor) missing.push({ start: cursor, end: reuse.dataStart });
    cursor = reuse.dataStart + reuse.entry.compressedSize;
  }
  if (end > cursor) missing.push({ start: cursor, end });
  const fetch = subtract(missing, present).flatMap((range) => {
    const pieces: ByteRange[] = [];
    for (let start = range.start; start < range.end; start += limits.longestRange) pieces.push({ start, end: Math.min(range.end, start + limits.longestRange) });
    return pieces;
  });
  return { reuse: candidates, fetch };
}

/** `ranges` without what `taken` covers (both sorted and disjoint). */
function subtract(ranges: readonly ByteRange[], taken: readonly ByteRange[]): ByteRange[] {
  const left: ByteRange[] = [];
  for (const range of ranges) {
    let start = range.start;
    for (const cut of taken) {
      if (cut.end <= start || cut.start >= range.end) continue;
      if (cut.start > start) left.push({ start, end: cut.start });
      start = Math.max(start, cut.end);
    }
    if (start < range.end) left.push({ start, end: range.end });
  }
  return left;
}

export const rangeBytes = (ranges: readonly ByteRange[]) => ranges.reduce((sum, range) => sum + range.end - range.start, 0);
