// Which parts of an archive being rebuilt are on disk already: what the first answer and the
// central directory's range brought, then every range fetched.
import type { ByteRange } from './delta-plan.js';

/** The parts of the archive already on disk, as sorted disjoint ranges. */
export class PresentRanges {
  private ranges: ByteRange[] = [];

  /** Adds [start, end), merged with the ranges it touches (tens of thousands of parts arrive: no re-sorting). */
  add(start: number, end: number): void {
    // The first range that ends at or after `start`, by binary search.
    let low = 0;
    for (let high = this.ranges.length; low < high; ) {
      const middle = (low + high) >>> 1;
      if (this.ranges[middle]!.end < start) low = middle + 1;
      else high = middle;
    }
    let last = low;
    while (last < this.ranges.length && this.ranges[last]!.start <= end) last++;
    const merged = last > low ? { start: Math.min(start, this.ranges[low]!.start), end: Math.max(end, this.ranges[last - 1]!.end) } : { start, end };
    this.ranges.splice(low, last - low, merged);
  }

  /** The first missing span at or after `position`, up to the next present range; undefined if `[position, end)` is present. */
  missing(position: number, end: number): ByteRange | undefined {
    let cursor = position;
    for (const range of this.ranges) {
      if (range.end <= cursor) continue;
      if (range.start > cursor) return { start: cursor, end: range.start };
      cursor = range.end;
      if (cursor >= end) return undefined;
    }
    return cursor >= end ? undefined : { start: cursor, end: Number.MAX_SAFE_INTEGER };
  }

  list(): readonly ByteRange[] {
    return this.ranges;
  }
}
