// Rebuilds a new archive's exact bytes from the end of it (already fetched by the check's first
// request), its central directory (one more range), the changed bytes (ranges), and the unchanged
// entries' compressed data copied from the previous archive. The result is a file like a full
// download's: its sha256 is the revision, and it is checked and extracted as any download is.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { writeWhole, writeWholeSync } from '../../base/write-whole.js';
import { ArchiveReader } from '../zip-reader.js';
import { digestsOfFile, sha256OfFile } from '../zip-release.js';
import { readCentralDirectory, TooManyEntries, type CentralDirectory } from './central-directory.js';
import { DeltaAbandoned, planDelta, rangeBytes, type ByteRange, type PlanLimits, type Reuse } from './delta-plan.js';
import type { DeltaBase } from './delta-base.js';
import { PresentRanges } from './present-ranges.js';

/** Where the ranges come from: an HTTP server or an S3 object, always the same version of it. */
export interface RangeSource {
  /** Whether one request can carry many ranges (HTTP multipart/byteranges); asked once, before planning. */
  multipleRangesPerRequest(): Promise<boolean>;
  /**
   * Fetches every range and gives its bytes, in pieces, to `write`. Throws DeltaAbandoned when an
   * answer is not exactly the bytes asked for of the same version of the archive.
   */
  fetch(ranges: readonly ByteRange[], write: (position: number, bytes: Buffer) => Promise<void>): Promise<void>;
  /** Requests made so far. */
  readonly requests: number;
}

export interface DeltaRequest {
  destination: string;
  /** The new archive's size, and the bytes the check's first answer gave (its end, as asked, or some other range of it). */
  size: number;
  first: { start: number; bytes: Buffer };
  source: RangeSource;
  base: DeltaBase;
  maxEntries: number;
  /** A digest of the whole new archive the server gave (S3's MD5 ETag, HTTP's Repr-Digest), checked when present. */
  wholeDigest?: { algorithm: 'md5' | 'sha256'; hex: string; from: string };
}

export interface DeltaResult {
  sha256: string;
  bytes: number;
  /** Bytes that came from the server, the first answer's included. */
  fetchedBytes: number;
  reusedBytes: number;
  requests: number;
}

/** The limits a plan works with: many small ranges when one request carries hundreds, fewer and larger otherwise. */
export function planLimitsFor(multipleRangesPerRequest: boolean): PlanLimits {
  return multipleRangesPerRequest
    ? { smallestReuse: 256, maxRanges: 100_000, longestRange: 8 << 20 }
    : { smallestReuse: 32 << 10, maxRanges: 1000, longestRange: 8 << 20 };
}

/** Rebuilds the archive into `destination` (a new file), or throws DeltaAbandoned (the caller removes the file). */
export async function rebuildFromDelta(request: DeltaRequest): Promise<DeltaResult> {
  const { size, first, source } = request;
  // Nothing but what the plan allows is fetched: at most half the archive, or it is downloaded whole.
  const budget = Math.floor(size / 2);
  // Read back too (headers checked, the whole hashed): opened for both.
  const output = await open(request.destination, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  const present = new PresentRanges();
  let fetchedBytes = first.bytes.length;
  const write = async (position: number, bytes: Buffer) => {
    if (position < 0 || position + bytes.length > size) throw new DeltaAbandoned(`the server sent bytes outside the archive (at ${position})`);
    await writeWhole(output, bytes, position);
    present.add(position, position + bytes.length);
  };
  // The kept archive is hashed while the ranges arrive: its bytes are reused only if it is still the archive noted.
  const baseHash = sha256OfFile(request.base.path);
  baseHash.catch(() => undefined);
  try {
    await output.truncate(size);
    await write(first.start, first.bytes);
    const next = await readNewCentralDirectory(request, present, async (range) => {
      if (fetchedBytes + range.end - range.start > budget) throw new DeltaAbandoned(`its central directory (${range.end - range.start} bytes) is more than half the archive`);
      fetchedBytes += range.end - range.start;
      await source.fetch([range], write);
    }, budget);
    const base = await readBaseCentralDirectory(request);
    const multiple = await source.multipleRangesPerRequest();
    const plan = planDelta(next, base, present.list(), planLimitsFor(multiple));
    const planned = rangeBytes(plan.fetch);
    if (fetchedBytes + planned > budget) {
      throw new DeltaAbandoned(`a delta would fetch ${fetchedBytes + planned} of its ${size} bytes (more than half: the headers of its ${next.entries.length} entries and the changed ones)`);
    }
    await source.fetch(plan.fetch, write);
    fetchedBytes += planned;
    if ((await baseHash) !== request.base.sha256) throw new DeltaAbandoned('the previous archive kept in the cache is damaged (its sha256 is not the one noted)');
    const reusedBytes = copyUnchanged(request.base, plan.reuse, output);
    checkLocalHeaders(next, output);
    const { wholeDigest } = request;
    const [sha256, other] = await digestsOfFile(output, wholeDigest?.algorithm === 'md5' ? ['sha256', 'md5'] : ['sha256']);
    if (wholeDigest && (wholeDigest.algorithm === 'md5' ? other : sha256) !== wholeDigest.hex) {
      throw new DeltaAbandoned(`the rebuilt archive's ${wholeDigest.algorithm} is not the one ${wholeDigest.from} gives`);
    }
    return { sha256: sha256!, bytes: size, fetchedBytes, reusedBytes, requests: source.requests };
  } finally {
    await output.close();
  }
}

/**
 * A local header is about as long as the entry's central-directory record less 16 bytes (the
 * same name and extra field, without the fields only the directory has): so before the directory
 * is fetched, its size and entry count say whether the headers alone would bust the budget.
 */
const centralRecordOverLocalHeader = 16;

async function readNewCentralDirectory(request: DeltaRequest, present: PresentRanges, fetchGap: (range: ByteRange) => Promise<void>, budget: number): Promise<CentralDirectory> {
  const reader = new FillingReader(request.destination, present, fetchGap);
  const headersAlone = (entryCount: number, offset: number) => {
    const directory = request.size - offset;
    const headers = Math.max(0, directory - entryCount * centralRecordOverLocalHeader);
    if (directory + headers > budget) {
      throw new DeltaAbandoned(`its central directory and local headers alone (about ${directory + headers} of its ${request.size} bytes, ${entryCount} entries) are more than half the archive`);
    }
  };
  try {
    return await readCentralDirectory(reader, request.size, request.maxEntries, headersAlone);
  } catch (error) {
    if (error instanceof DeltaAbandoned) throw error;
    if (error instanceof TooManyEntries) throw new DeltaAbandoned(error.message);
    throw new DeltaAbandoned(`its central directory cannot be read (${(error as Error).message})`);
  }
}

async function readBaseCentralDirectory(request: DeltaRequest): Promise<CentralDirectory> {
  const reader = new ArchiveReader(request.base.path);
  try {
    return await readCentralDirectory(reader, reader.size, Number.MAX_SAFE_INTEGER);
  } catch (error) {
    throw new DeltaAbandoned(`the previous archive kept in the cache cannot be read (${(error as Error).message})`);
  }
}

const localHeaderSignature = 0x04034b50;
const dataDescriptorSignature = 0x08074b50;

/**
 * Copies each reused entry's data from the base archive, after checking that the fetched local
 * header in front of it has the length the plan assumed (and the data descriptor after it, if
 * any). A header that does not fit abandons the delta: nothing is guessed.
 */
function copyUnchanged(base: DeltaBase, reuse: readonly Reuse[], output: FileHandle): number {
  // Synchronous reads and writes: tens of thousands of small ones, each a thread-pool round trip otherwise.
  const source = openSync(base.path, 'r');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const header = Buffer.alloc(30);
  let copied = 0;
  const readExactly = (fd: number, target: Buffer, length: number, position: number) => {
    if (readSync(fd, target, 0, length, position) !== length) throw new DeltaAbandoned(`an archive ends before offset ${position + length}`);
  };
  try {
    for (const { entry, base: old, dataStart, headerLength, descriptorLength } of reuse) {
      readExactly(output.fd, header, 30, entry.localHeaderOffset);
      if (header.readUInt32LE(0) !== localHeaderSignature || 30 + header.readUInt16LE(26) + header.readUInt16LE(28) !== headerLength) {
        throw new DeltaAbandoned(`the local header at offset ${entry.localHeaderOffset} is not the one its central directory implies`);
      }
      if (descriptorLength > 0) {
        readExactly(output.fd, header, 8, dataStart + entry.compressedSize);
        if (header.readUInt32LE(0) !== dataDescriptorSignature || header.readUInt32LE(4) !== entry.crc32) {
          throw new DeltaAbandoned(`the data descriptor after the entry at offset ${entry.localHeaderOffset} is not the one assumed`);
        }
      }
      readExactly(source, header, 30, old.localHeaderOffset);
      if (header.readUInt32LE(0) !== localHeaderSignature) throw new DeltaAbandoned('the previous archive kept in the cache is damaged');
      const oldDataStart = old.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
      for (let done = 0; done < entry.compressedSize; ) {
        const length = Math.min(buffer.length, entry.compressedSize - done);
        readExactly(source, buffer, length, oldDataStart + done);
        writeWholeSync(output.fd, buffer.subarray(0, length), dataStart + done);
        done += length;
      }
      copied += entry.compressedSize;
    }
  } finally {
    closeSync(source);
  }
  return copied;
}

/**
 * Every entry's local header where the central directory says, with its name: a rebuilt archive
 * whose pieces were put in the wrong place is caught here, not by the extractor after the check.
 */
function checkLocalHeaders(next: CentralDirectory, output: FileHandle): void {
  const header = Buffer.alloc(30 + 0xffff);
  for (const entry of next.entries) {
    const length = 30 + entry.nameLength;
    if (readSync(output.fd, header, 0, length, entry.localHeaderOffset) !== length || header.readUInt32LE(0) !== localHeaderSignature || header.readUInt16LE(26) !== entry.nameLength || header.toString('latin1', 30, length) !== entry.key) {
      throw new DeltaAbandoned(`the rebuilt archive has no local header for ${JSON.stringify(entry.key)} where its central directory says`);
    }
  }
}

/**
 * yauzl's reads of the new archive, served from the file being rebuilt; a read of bytes not yet
 * there first fetches the whole gap up to what is (the central directory, in one range).
 */
class FillingReader extends ArchiveReader {
  constructor(
    path: string,
    private readonly present: PresentRanges,
    private readonly fetchGap: (range: ByteRange) => Promise<void>,
  ) {
    super(path);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (error: Error | null) => void): void {
    this.fill(position, position + length).then(
      () => super.read(buffer, offset, length, position, callback),
      (error: Error) => callback(error),
    );
  }

  private async fill(start: number, end: number): Promise<void> {
    for (let gap = this.present.missing(start, end); gap; ) {
      await this.fetchGap({ start: gap.start, end: Math.min(gap.end, this.size) });
      const still = this.present.missing(start, end);
      if (still && still.start === gap.start) throw new DeltaAbandoned(`the server did not send bytes ${gap.start}- of the archive`);
      gap = still;
    }
  }
}
