// The delta's bookkeeping against simple models, over seeded random cases: the ranges on disk
// (against a map of every byte), and the plan (every byte of the new archive is fetched, already
// there or an unchanged entry's data copied, exactly once; only data is ever copied, and only of
// an entry whose name, CRC-32, sizes and method are the base's).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CentralDirectory, CentralEntry } from '../src/remotes/zip-delta/central-directory.js';
import { planDelta, type ByteRange } from '../src/remotes/zip-delta/delta-plan.js';
import { PresentRanges } from '../src/remotes/zip-delta/present-ranges.js';

function seeded(seed: number): (below: number) => number {
  let state = seed;
  return (below) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((state / 2 ** 31) * below);
  };
}

test('ranges on disk: adds in any order, touching, overlapping or apart, give what a map of every byte gives', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const random = seeded(seed);
    const size = 50 + random(200);
    const bytes = new Array<boolean>(size).fill(false);
    const present = new PresentRanges();
    for (let count = random(30); count > 0; count--) {
      const start = random(size);
      const end = Math.min(size, start + 1 + random(20));
      present.add(start, end);
      bytes.fill(true, start, end);
    }
    const expected: ByteRange[] = [];
    bytes.forEach((on, index) => {
      if (!on) return;
      const last = expected.at(-1);
      if (last && last.end === index) last.end++;
      else expected.push({ start: index, end: index + 1 });
    });
    assert.deepEqual(present.list(), expected, `seed ${seed}`);
    const from = random(size);
    const to = Math.min(size, from + 1 + random(40));
    const firstGap = bytes.findIndex((on, index) => index >= from && index < to && !on);
    const gap = present.missing(from, to);
    assert.equal(gap?.start, firstGap === -1 ? undefined : firstGap, `seed ${seed}`);
  }
});

/** An archive of `count` entries laid one after another: header (30 + name + extra), data, maybe a descriptor. */
function archive(random: (below: number) => number, count: number, names: string[]): { directory: CentralDirectory; size: number } {
  const entries: CentralEntry[] = [];
  let offset = random(3) === 0 ? random(100) : 0; // sometimes bytes before the first entry
  for (let index = 0; index < count; index++) {
    const key = names[index]!;
    const flags = random(4) === 0 ? 0x8 : 0;
    const compressedSize = random(3000);
    const entry: CentralEntry = { key, nameLength: key.length, crc32: random(4), compressedSize, uncompressedSize: compressedSize + random(2), method: 8, flags, localHeaderOffset: offset };
    entries.push(entry);
    offset += 30 + key.length + random(40) + compressedSize + (flags ? 16 : 0);
  }
  const size = offset + 46 * count + 22;
  // The central directory lists entries in any order.
  return { directory: { entries: entries.sort(() => random(3) - 1), offset }, size };
}

test('a plan covers the new archive exactly once: fetched, already there, or an unchanged entry\'s data copied', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const random = seeded(seed);
    const names = Array.from({ length: 40 }, (_, index) => `dir/file-${index}.js`);
    const next = archive(random, 5 + random(30), names);
    const base = archive(random, 5 + random(30), names);
    // Some of the new entries' data is the same as the base's (same name, CRC-32, sizes, method).
    for (const entry of next.directory.entries) {
      const old = base.directory.entries.find((candidate) => candidate.key === entry.key);
      if (old && random(2) === 0) Object.assign(old, { crc32: entry.crc32, compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize, method: entry.method });
    }
    const tailStart = Math.max(0, next.size - random(5000));
    const present = [{ start: Math.min(tailStart, next.directory.offset), end: next.size }];
    const plan = planDelta(next.directory, base.directory, present, { smallestReuse: random(2) === 0 ? 0 : 256, maxRanges: random(2) === 0 ? 100_000 : 5, longestRange: 1 + random(4000) });
    const covered = new Array<number>(next.size).fill(0);
    const cover = (start: number, end: number) => {
      for (let index = start; index < end; index++) covered[index]!++;
    };
    for (const range of plan.fetch) cover(range.start, range.end);
    for (const range of present) cover(range.start, range.end);
    for (const reuse of plan.reuse) {
      const old = base.directory.entries.find((candidate) => candidate.key === reuse.entry.key)!;
      assert.deepEqual([reuse.entry.crc32, reuse.entry.compressedSize, reuse.entry.uncompressedSize, reuse.entry.method], [old.crc32, old.compressedSize, old.uncompressedSize, old.method], `seed ${seed}`);
      // Only data: it starts past the entry's header (30 bytes and the name at least).
      assert.ok(reuse.dataStart >= reuse.entry.localHeaderOffset + 30 + reuse.entry.nameLength, `seed ${seed}`);
      cover(reuse.dataStart, reuse.dataStart + reuse.entry.compressedSize);
    }
    assert.deepEqual(covered.filter((times) => times !== 1).length, 0, `seed ${seed}: every byte exactly once`);
    for (let index = 1; index < plan.fetch.length; index++) assert.ok(plan.fetch[index - 1]!.end <= plan.fetch[index]!.start, `seed ${seed}: sorted`);
  }
});
