// Safe zip extraction into an empty staging directory. The archive's central directory is read
// first (never the streaming local headers, which drop entries: see the issue notes), every
// entry is checked before a byte is written, and the whole archive is rejected on the first
// hostile, corrupt or oversized entry. Symlinks are created last, after every file, so that no
// write can pass through a link; nothing is ever written outside the staging directory.
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, createWriteStream, openSync, writeSync } from 'node:fs';
import { chmod, statfs, symlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw, crc32, inflateRawSync } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { DeployError, fetchError, messageOf, noSpaceError, noSpaceLeft } from '../base/errors.js';
import type { ProgressSink } from '../base/progress.js';
import { linkStaysInside } from '../base/symlink-containment.js';
import { pausePoint } from '../base/test-pause.js';
import { releaseMode } from '../base/release-modes.js';
import { timeSlices } from '../base/time-slices.js';
import { directoryMaker, rejectEntriesBelowLinksOrFiles, rejected, releasePathOf } from './entry-path.js';
import { ArchiveReader } from './zip-reader.js';
import { inManifestOrder, type ManifestEntry } from '../verify/manifest.js';

export interface ExtractLimits {
  maxUnpackedBytes: number;
  maxEntries: number;
}

export interface ExtractSummary {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  /**
   * The sha256 of every file written, by its path in the release: hashed from the bytes as they
   * were written, so the manifest need not read the whole release back.
   */
  fileHashes: Map<string, string>;
  /**
   * Every entry written (the implicit directories too), as the release's manifest lists them
   * (zips), made as they are iterated: each pass makes new objects.
   */
  entries?: Iterable<ManifestEntry>;
}

type EntryKind = 'file' | 'directory' | 'symlink';

/**
 * What extraction needs of an entry. yauzl's Entry objects (about 1.5 KB of heap each with their
 * buffers: 40 MB for 26,000 entries) are let go as soon as an entry is planned.
 */
interface EntryRecord {
  /** As the archive names it, for messages. */
  fileName: string;
  localHeaderOffset: number;
  /** The central directory's name and extra-field lengths; local headers usually repeat them. */
  fileNameLength: number;
  extraFieldLength: number;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  compressionMethod: number;
}

interface PlannedEntry {
  entry: EntryRecord;
  /** Normalised relative path, no trailing slash. */
  path: string;
  kind: EntryKind;
  mode: number;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const madeByUnix = new Set([3, 19]); // Unix, and OS X (zip's "made by" host codes)
const smallFileBytes = 1 << 20; // read into memory and written in one call below this
// Small entries are extracted synchronously in slices of this many milliseconds, then the event
// loop runs (lock refresh, signals). Measured: one thread-pool round trip per small file cost
// ~0.7 ms of futex time on a 2-core VM, several times the cost of the file itself. The large
// files' chunks move one step between slices: in 20 ms slices the small files' allocations
// outlived them into V8's old generation, where they waited for a full collection (ArrayBuffers
// peaked at 37-38 MiB, against 30-31 in 5 ms slices, in the same time; docs/performance.md).
const synchronousSliceMs = 5;
const localHeaderSignature = 0x04034b50;
// The mode given to open() is narrowed by the umask; a chmod is needed only when that happened.
const umask = process.umask();
const longestSymlinkTarget = 4096;

export async function extractZip(
  zipPath: string,
  destination: string,
  limits: ExtractLimits,
  archiveName = zipPath,
  progress?: ProgressSink,
): Promise<ExtractSummary> {
  let zip: ZipFile;
  let reader: ArchiveReader;
  try {
    reader = new ArchiveReader(zipPath);
  } catch (error) {
    throw fetchError(`cannot open archive ${archiveName}: ${messageOf(error)}`);
  }
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(reader, reader.size, {
      lazyEntries: true,
      autoClose: false,
      strictFileNames: true,
      validateEntrySizes: true,
      decodeStrings: true,
    });
  } catch (error) {
    reader.close(() => undefined);
    throw fetchError(`archive ${archiveName} is not a readable zip (${messageOf(error)}); it may be corrupt or truncated`);
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw fetchError(
        `archive ${archiveName} rejected: ${zip.entryCount} entries exceed max-entries = ${limits.maxEntries}`,
        { hint: 'raise max-entries if the archive is genuine' },
      );
    }
    const planned = await planEntries(zip, archiveName, limits);
    const unpackedBytes = planned.reduce((sum, item) => sum + item.entry.uncompressedSize, 0);
    await requireFreeSpace(destination, unpackedBytes + planned.length * blockAllowance);
    reader.stopCaching();
    progress?.start('Extracting', unpackedBytes);
    try {
      return await writeEntries({ reader, archiveName, progress, localHeaderSlack: 0 }, planned, resolve(destination));
    } finally {
      progress?.stop();
    }
  } finally {
    zip.close();
  }
}

// Each file takes at least one block beyond its bytes: a rough allowance for that and for directories.
const blockAllowance = 4096;

/** Refuses before writing anything when the release cannot fit: a half-extracted release helps nobody. */
async function requireFreeSpace(destination: string, needed: number): Promise<void> {
  const space = await statfs(destination);
  const free = space.bavail * space.bsize;
  if (free < needed) throw noSpaceLeft(destination, `the archive needs about ${needed} bytes and ${free} are free`);
}

async function planEntries(zip: ZipFile, archiveName: string, limits: ExtractLimits): Promise<PlannedEntry[]> {
  const planned: PlannedEntry[] = [];
  const seen = new Map<string, EntryKind>();
  let declaredBytes = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      const item = planEntry(entry, archiveName);
      if (item === undefined) continue;
      if (seen.has(item.path)) throw rejected(archiveName, entry.fileName, 'appears twice');
      seen.set(item.path, item.kind);
      declaredBytes += entry.uncompressedSize;
      if (declaredBytes > limits.maxUnpackedBytes) {
        throw fetchError(
          `archive ${archiveName} rejected: it unpacks to more than max-unpacked-size = ${limits.maxUnpackedBytes} bytes`,
          { hint: 'raise max-unpacked-size if the archive is genuine' },
        );
      }
      planned.push(item);
    }
  } catch (error) {
    if (error instanceof DeployError) throw error;
    throw fetchError(`archive ${archiveName} rejected: ${messageOf(error)}`);
  }
  rejectOverlappingEntries(planned, archiveName);
  // A path below a symlink entry would be written through the link once it exists.
  rejectEntriesBelowLinksOrFiles(planned.map((item) => ({ path: item.path, name: item.entry.fileName })), seen, archiveName);
  return planned;
}

/**
 * Entries whose data share bytes: a few kilobytes whose entries all point at one large body
 * unpack to gigabytes (a "non-recursive zip bomb"). Info-ZIP refuses them too. Each entry's
 * local header and data must end before the next entry's begins.
 */
function rejectOverlappingEntries(planned: PlannedEntry[], archiveName: string): void {
  const byOffset = [...planned].sort((a, b) => a.entry.localHeaderOffset - b.entry.localHeaderOffset);
  for (let index = 1; index < byOffset.length; index++) {
    const before = (byOffset[index - 1] as PlannedEntry).entry;
    const current = byOffset[index] as PlannedEntry;
    const end = before.localHeaderOffset + 30 + before.fileNameLength + before.compressedSize;
    if (current.entry.localHeaderOffset < end) {
      throw rejected(archiveName, current.entry.fileName, `overlaps the data of entry "${before.fileName}" (a zip bomb's trick)`);
    }
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The entry's name as its maker meant it. yauzl decodes a name without the UTF-8 flag as CP437,
 * but macOS and many tools write UTF-8 without setting the flag; like Info-ZIP and Go, a name
 * whose bytes are valid UTF-8 is read as UTF-8.
 */
function entryName(entry: Entry): string {
  const flaggedUtf8 = (entry.generalPurposeBitFlag & 0x800) !== 0 || entry.extraFields.some((field) => field.id === 0x7075);
  const raw = entry.fileNameRaw;
  if (flaggedUtf8 || !raw.some((byte) => byte >= 0x80)) return entry.fileName;
  try {
    return strictUtf8.decode(raw);
  } catch {
    return entry.fileName;
  }
}

// A DOS volume label (attribute 0x08 of a name made by DOS/Windows) names the disk, not a file.
const isVolumeLabel = (entry: Entry) => entry.versionMadeBy >> 8 === 0 && (entry.externalFileAttributes & 0x18) === 0x08;

function planEntry(entry: Entry, archiveName: string): PlannedEntry | undefined {
  if (isVolumeLabel(entry)) return undefined;
  const name = entryName(entry);
  // yauzl refuses absolute paths, ".." and backslashes already; checked again here so the rule
  // does not hang on a library option.
  const path = releasePathOf(name, archiveName, entry.fileNameRaw);
  if (path === undefined) return undefined; // "./" or "/" alone: the root itself
  if (entry.isEncrypted()) throw rejected(archiveName, name, 'is encrypted');
  if (!entry.canDecodeFileData()) {
    throw rejected(archiveName, name, `uses compression method ${entry.compressionMethod}, which is not supported`);
  }

  const unixMode = madeByUnix.has(entry.versionMadeBy >> 8) ? entry.externalFileAttributes >>> 16 : 0;
  const type = unixMode & S_IFMT;
  let kind: EntryKind;
  if (type === S_IFLNK) kind = 'symlink';
  else if (type === S_IFDIR || name.endsWith('/')) kind = 'directory';
  else if (type === S_IFREG || type === 0) kind = 'file';
  else throw rejected(archiveName, name, 'is a device, socket or fifo');

  const permissions = releaseMode(unixMode); // see src/release-modes.ts: no group/world write, no setuid
  const mode = kind === 'directory' ? (permissions || 0o755) | 0o700 : permissions || 0o644;
  const record: EntryRecord = {
    fileName: entry.fileName,
    localHeaderOffset: entry.relativeOffsetOfLocalHeader,
    fileNameLength: entry.fileNameLength,
    extraFieldLength: entry.extraFieldLength,
    compressedSize: entry.compressedSize,
    uncompressedSize: entry.uncompressedSize,
    crc32: entry.crc32,
    compressionMethod: entry.compressionMethod,
  };
  return { entry: record, path, kind, mode };
}

interface OpenArchive {
  /** The archive, for positioned reads of local headers and entries. */
  reader: ArchiveReader;
  progress: ProgressSink | undefined;
  archiveName: string;
  /**
   * How many bytes longer the last local header's name and extra field were than the central
   * directory said: zip(1) writes more extra fields locally (a 28-byte "UT" and "ux" pair against
   * 24 centrally), and guessing from the central lengths alone cost every entry a second read.
   */
  localHeaderSlack: number;
}

async function writeEntries(archive: OpenArchive, planned: PlannedEntry[], root: string): Promise<ExtractSummary> {
  const { archiveName } = archive;
  const summary: ExtractSummary = { files: 0, directories: 0, symlinks: 0, bytes: 0, fileHashes: new Map() };
  const directories = planned.filter((item) => item.kind === 'directory');
  const smallFiles = planned.filter((item) => item.kind === 'file' && item.entry.uncompressedSize < smallFileBytes);
  const largeFiles = planned.filter((item) => item.kind === 'file' && item.entry.uncompressedSize >= smallFileBytes);
  const symlinks = planned.filter((item) => item.kind === 'symlink');

  const ensureDirectory = directoryMaker(root);
  for (const item of directories) ensureDirectory(join(root, item.path));

  // The large files stream through the thread pool while the small ones are written here: the
  // main thread sat idle for their reads, inflation and writes (1.7 s of 7.8 s measured for a
  // node_modules-like archive with four 48 MiB files).
  const stopLargeFiles = new AbortController();
  const largeFilesWritten = writeLargeFiles(archive, largeFiles, { root, ensureDirectory, summary, signal: stopLargeFiles.signal });
  try {
    await writeSmallFiles(archive, smallFiles, { root, ensureDirectory, summary });
  } catch (error) {
    stopLargeFiles.abort();
    await largeFilesWritten.catch(() => undefined);
    throw error;
  }
  await largeFilesWritten;

  // Every link's target is read first, so each is judged with the others followed (a chain).
  const links = new Map<string, string>();
  for (const item of symlinks) {
    if (item.entry.uncompressedSize > longestSymlinkTarget) {
      throw rejected(archiveName, item.entry.fileName, 'is a symlink with an overlong target');
    }
    links.set(item.path, readSmallEntry(archive, item).toString('utf8'));
  }
  for (const item of symlinks) {
    if (!linkStaysInside(item.path, links)) {
      throw rejected(archiveName, item.entry.fileName, `is a symlink to "${links.get(item.path)}", outside the release`);
    }
  }
  for (const item of symlinks) {
    const linkPath = join(root, item.path);
    ensureDirectory(dirname(linkPath));
    await symlink(links.get(item.path) as string, linkPath);
    summary.symlinks++;
  }

  // Directory modes last: a read-only directory would have refused the files written into it.
  // Synchronously, in slices as the small files are: 4,288 awaited chmods took 170-180 ms, a
  // thread-pool round trip each, against 20 ms.
  const slices = timeSlices(synchronousSliceMs);
  for (const item of directories) {
    chmodSync(join(root, item.path), item.mode);
    summary.directories++;
    if (slices.due) await slices.next();
  }
  summary.entries = treeEntries(planned, links, summary.fileHashes);
  return summary;
}

/**
 * What the manifest would read back from the release just written: files with the size, mode and
 * sha256 they were written with, symlinks (mode 777 on Linux) with their targets, directories
 * with the mode given to them, and the directories made for entries whose parents the archive
 * does not list, with mkdir's 755 narrowed by the umask. Made one at a time as the manifest is
 * written: 28,000 entry objects held at once, with their JSON and its copies, took a first deploy's
 * heap from 20 to 59 MiB at its very end (sampled every 20 ms; docs/performance.md).
 */
function treeEntries(planned: readonly PlannedEntry[], links: ReadonlyMap<string, string>, fileHashes: ReadonlyMap<string, string>): Iterable<ManifestEntry> {
  // The planned entries' paths, then the implicit directories': index i past planned is one of those.
  const paths = planned.map((item) => item.path);
  const listed = new Set<string>(paths);
  for (const item of planned) {
    for (let slash = item.path.lastIndexOf('/'); slash > 0; slash = item.path.lastIndexOf('/', slash - 1)) {
      const parent = item.path.slice(0, slash);
      if (listed.has(parent)) break;
      listed.add(parent);
      paths.push(parent);
    }
  }
  const entryAt = (index: number): ManifestEntry => {
    const item = planned[index];
    if (!item) return { path: paths[index] as string, type: 'directory', mode: 0o755 & ~umask };
    if (item.kind === 'file') return { path: item.path, type: 'file', size: item.entry.uncompressedSize, mode: item.mode, sha256: fileHashes.get(item.path) as string };
    if (item.kind === 'symlink') return { path: item.path, type: 'symlink', mode: 0o777, target: links.get(item.path) as string };
    return { path: item.path, type: 'directory', mode: item.mode };
  };
  const order = inManifestOrder(paths);
  return { *[Symbol.iterator]() { for (const index of order) yield entryAt(index); } };
}

interface WriteTarget {
  root: string;
  ensureDirectory: (path: string) => void;
  summary: ExtractSummary;
}

async function writeSmallFiles(archive: OpenArchive, smallFiles: PlannedEntry[], { root, ensureDirectory, summary }: WriteTarget): Promise<void> {
  const slices = timeSlices(synchronousSliceMs);
  for (const [index, item] of smallFiles.entries()) {
    const target = join(root, item.path);
    ensureDirectory(dirname(target));
    const data = readSmallEntry(archive, item);
    writeSmallFile(target, data, item.mode);
    summary.fileHashes.set(item.path, createHash('sha256').update(data).digest('hex'));
    summary.bytes += data.length;
    summary.files++;
    archive.progress?.advance(data.length);
    if (index === 0) await pausePoint('extracting');
    if (slices.due) await slices.next();
  }
}

async function writeLargeFiles(archive: OpenArchive, largeFiles: PlannedEntry[], { root, ensureDirectory, summary, signal }: WriteTarget & { signal: AbortSignal }): Promise<void> {
  for (const item of largeFiles) {
    const target = join(root, item.path);
    ensureDirectory(dirname(target));
    const written = await writeLargeFile(archive, item, target, signal);
    summary.bytes += written.bytes;
    summary.fileHashes.set(item.path, written.sha256);
    summary.files++;
  }
}

function writeSmallFile(target: string, data: Buffer, mode: number): void {
  // 'wx': never follow or replace something already there.
  const fd = openSync(target, 'wx', mode);
  try {
    for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset);
  } finally {
    closeSync(fd);
  }
  if ((mode & umask) !== 0) chmodSync(target, mode);
}

/**
 * A large entry, streamed: its raw data (located by yauzl) through an inflater with 1 MiB output
 * chunks. yauzl's own read stream inflates in zlib's default 16 KiB chunks, a thread-pool round
 * trip each: 1.37 s against unzip's 0.82 s for a 128 MiB entry.
 */
async function writeLargeFile(archive: OpenArchive, item: PlannedEntry, target: string, signal: AbortSignal): Promise<{ bytes: number; sha256: string }> {
  const { entry } = item;
  const checker = new CrcCheck(entry, archive.archiveName, archive.progress);
  const header = Buffer.allocUnsafe(30);
  readArchive(archive, entry, header, entry.localHeaderOffset);
  const fileDataStart = entry.localHeaderOffset + localDataOffset(archive, entry, header);
  try {
    const output = createWriteStream(target, { flags: 'wx', mode: item.mode, highWaterMark: 1 << 20 });
    const raw = archive.reader.createRawStream(fileDataStart, fileDataStart + entry.compressedSize);
    const stages = entry.compressionMethod === 0 ? [raw] : [raw, createInflateRaw({ chunkSize: 1 << 20 })];
    await pipeline([...stages, checker, output], { signal });
  } catch (error) {
    throw wrapEntryError(error, archive.archiveName, entry);
  }
  if ((item.mode & umask) !== 0) await chmod(target, item.mode);
  return { bytes: checker.bytes, sha256: checker.sha256.digest('hex') };
}

const unreadable = (archive: OpenArchive, entry: EntryRecord, reason: string) =>
  rejected(archive.archiveName, entry.fileName, `cannot be read (${reason}); the archive is corrupt or truncated`);

function readArchive(archive: OpenArchive, entry: EntryRecord, buffer: Buffer, position: number): void {
  try {
    archive.reader.readFully(buffer, position);
  } catch (error) {
    throw unreadable(archive, entry, messageOf(error));
  }
}

/**
 * Where the entry's data begins, from the start of its local header: after the 30-byte fixed
 * header (APPNOTE 4.3.7) and the local name and extra field, whose lengths need not match the
 * central directory's. The data must end inside the archive.
 */
function localDataOffset(archive: OpenArchive, entry: EntryRecord, header: Buffer): number {
  if (header.readUInt32LE(0) !== localHeaderSignature) throw unreadable(archive, entry, 'bad local header signature');
  const offset = 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (entry.localHeaderOffset + offset + entry.compressedSize > archive.reader.size) {
    throw unreadable(archive, entry, 'its data runs past the end of the archive');
  }
  return offset;
}

// One buffer for the raw bytes of every small entry: a new one per file left hundreds of
// megabytes to the garbage collector. It grows to what a small entry can need and no further;
// a larger request (a hostile size that still fits in the archive) gets a buffer of its own, so
// the shared one never stays large in a daemon.
const largestScratch = 2 * smallFileBytes;
let scratch = Buffer.allocUnsafe(64 * 1024);
function scratchOf(length: number): Buffer {
  if (length > largestScratch) return Buffer.allocUnsafe(length);
  if (scratch.length < length) scratch = Buffer.allocUnsafe(Math.min(largestScratch, Math.max(length, 2 * scratch.length)));
  return scratch;
}

/**
 * A small entry's bytes: its local header and data in one positioned read, inflated and
 * CRC-checked. yauzl reads local headers only asynchronously, so they are read here. The bytes of
 * a stored entry live in the shared scratch buffer: valid until the next entry is read.
 */
function readSmallEntry(archive: OpenArchive, item: PlannedEntry): Buffer {
  const { entry } = item;
  // Checked before any buffer is made for it: the sizes are the central directory's word.
  if (entry.localHeaderOffset + 30 + entry.compressedSize > archive.reader.size) {
    throw unreadable(archive, entry, 'its data runs past the end of the archive');
  }
  // The local name and extra field are as long as the central directory's plus what the archive's
  // last local header had more: guessed, so that header and data are read at once.
  const centralLengths = 30 + entry.fileNameLength + entry.extraFieldLength;
  const guess = Math.min(centralLengths + archive.localHeaderSlack + entry.compressedSize, archive.reader.size - entry.localHeaderOffset);
  let block = scratchOf(guess).subarray(0, guess);
  readArchive(archive, entry, block, entry.localHeaderOffset);
  const dataStart = localDataOffset(archive, entry, block);
  archive.localHeaderSlack = Math.max(0, dataStart - centralLengths);
  if (dataStart + entry.compressedSize > block.length) {
    block = scratchOf(dataStart + entry.compressedSize).subarray(0, dataStart + entry.compressedSize);
    readArchive(archive, entry, block, entry.localHeaderOffset);
  }
  const compressed = block.subarray(dataStart, dataStart + entry.compressedSize);
  const tooMuch = () => rejected(archive.archiveName, entry.fileName, `holds more data than its declared ${entry.uncompressedSize} bytes`);
  let data: Buffer;
  try {
    // Never more than declared (plus one byte, to tell "more" from "exactly"): an entry that
    // declares 1,000 bytes must not inflate to 512 MiB in memory before the size is checked.
    // One output chunk of that size: zlib's 16 KiB default meant several buffers and a copy.
    const limit = entry.uncompressedSize + 1;
    data = entry.compressionMethod === 0 ? compressed : inflateRawSync(compressed, { maxOutputLength: limit, chunkSize: Math.max(64, limit) });
  } catch (error) {
    if (error instanceof RangeError) throw tooMuch();
    throw unreadable(archive, entry, messageOf(error));
  }
  if (data.length > entry.uncompressedSize) throw tooMuch();
  if (data.length !== entry.uncompressedSize || crc32(data) >>> 0 !== entry.crc32 >>> 0) {
    throw rejected(archive.archiveName, entry.fileName, 'fails its CRC-32 check; the archive is corrupt');
  }
  return data;
}

function wrapEntryError(error: unknown, archiveName: string, entry: EntryRecord): Error {
  if (error instanceof DeployError) return error;
  const noSpace = noSpaceError(error, `writing entry "${entry.fileName}" (${entry.uncompressedSize} bytes)`);
  if (noSpace) return noSpace;
  return rejected(archiveName, entry.fileName, `cannot be read (${messageOf(error)}); the archive is corrupt or truncated`);
}

/** Passes data through and fails at the end unless the CRC-32 matches the entry's (yauzl does not check it). */
class CrcCheck extends Transform {
  bytes = 0;
  /** The data's sha256, for the manifest, computed on the way through. */
  readonly sha256 = createHash('sha256');
  private crc = 0;
  constructor(
    private readonly entry: EntryRecord,
    private readonly archiveName: string,
    private readonly progress?: ProgressSink,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.crc = crc32(chunk, this.crc);
    this.sha256.update(chunk);
    this.bytes += chunk.length;
    this.progress?.advance(chunk.length);
    if (this.bytes > this.entry.uncompressedSize) {
      // More data than the archive declared: stop now rather than fill the disk.
      callback(rejected(this.archiveName, this.entry.fileName, `holds more data than its declared ${this.entry.uncompressedSize} bytes`));
      return;
    }
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    if (this.bytes !== this.entry.uncompressedSize || this.crc >>> 0 !== this.entry.crc32 >>> 0) {
      callback(rejected(this.archiveName, this.entry.fileName, 'fails its CRC-32 check; the archive is corrupt'));
      return;
    }
    callback();
  }
}
