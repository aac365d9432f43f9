// Safe zip extraction into an empty staging directory. The archive's central directory is read
// first (never the streaming local headers, which drop entries: see the issue notes), every
// entry is checked before a byte is written, and the whole archive is rejected on the first
// hostile, corrupt or oversized entry. Symlinks are created last, after every file, so that no
// write can pass through a link; nothing is ever written outside the staging directory.
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, open, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { DeployError, fetchError, messageOf } from './errors.js';

export interface ExtractLimits {
  maxUnpackedBytes: number;
  maxEntries: number;
}

export interface ExtractSummary {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

type EntryKind = 'file' | 'directory' | 'symlink';

interface PlannedEntry {
  entry: Entry;
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
const parallelEntries = 16;
const longestSymlinkTarget = 4096;

const rejected = (archiveName: string, entryName: string, reason: string) =>
  fetchError(`archive ${archiveName} rejected: entry "${entryName}" ${reason}; nothing was deployed`);

export async function extractZip(
  zipPath: string,
  destination: string,
  limits: ExtractLimits,
  archiveName = zipPath,
): Promise<ExtractSummary> {
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(zipPath, {
      lazyEntries: true,
      autoClose: false,
      strictFileNames: true,
      validateEntrySizes: true,
      decodeStrings: true,
    });
  } catch (error) {
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
    return await writeEntries(zip, planned, resolve(destination), archiveName);
  } finally {
    zip.close();
  }
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
  // A path below a symlink entry would be written through the link once it exists.
  for (const item of planned) {
    for (let parent = posix.dirname(item.path); parent !== '.'; parent = posix.dirname(parent)) {
      const parentKind = seen.get(parent);
      if (parentKind === 'symlink' || parentKind === 'file') {
        throw rejected(archiveName, item.entry.fileName, `lies below "${parent}", which is a ${parentKind}`);
      }
    }
  }
  return planned;
}

function planEntry(entry: Entry, archiveName: string): PlannedEntry | undefined {
  const name = entry.fileName;
  // yauzl refuses absolute paths, ".." and backslashes already; checked again here so the rule
  // does not hang on a library option.
  if (name.includes('\\') || name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.includes('\0')) {
    throw rejected(archiveName, name, 'has an absolute or drive path or a backslash');
  }
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw rejected(archiveName, name, 'climbs out with ".."');
  if (parts.length === 0) return undefined; // "./" or "/" alone: the root itself
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

  const permissions = unixMode & 0o777; // setuid, setgid and sticky bits are not kept
  const mode = kind === 'directory' ? (permissions || 0o755) | 0o700 : permissions || 0o644;
  return { entry, path: parts.join('/'), kind, mode };
}

async function writeEntries(zip: ZipFile, planned: PlannedEntry[], root: string, archiveName: string): Promise<ExtractSummary> {
  const summary: ExtractSummary = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const directories = planned.filter((item) => item.kind === 'directory');
  const files = planned.filter((item) => item.kind === 'file');
  const symlinks = planned.filter((item) => item.kind === 'symlink');

  const createdDirectories = new Set<string>([root]);
  const ensureDirectory = async (path: string) => {
    if (createdDirectories.has(path)) return;
    await mkdir(path, { recursive: true, mode: 0o755 });
    for (let current = path; current !== root && !createdDirectories.has(current); current = dirname(current)) {
      createdDirectories.add(current);
    }
  };
  for (const item of directories) await ensureDirectory(join(root, item.path));

  await forEachInParallel(files, parallelEntries, async (item) => {
    const target = join(root, item.path);
    await ensureDirectory(dirname(target));
    summary.bytes += await writeFileEntry(zip, item, target, archiveName);
    summary.files++;
  });

  for (const item of symlinks) {
    const target = (await readEntryBytes(zip, item, archiveName)).toString('utf8');
    const linkPath = join(root, item.path);
    const resolved = resolve(dirname(linkPath), target);
    if (target === '' || isAbsolute(target) || target.includes('\0') || !isInside(root, resolved)) {
      throw rejected(archiveName, item.entry.fileName, `is a symlink to "${target}", outside the release`);
    }
    await ensureDirectory(dirname(linkPath));
    await symlink(target, linkPath);
    summary.symlinks++;
  }

  // Directory modes last: a read-only directory would have refused the files written into it.
  for (const item of directories) {
    await chmod(join(root, item.path), item.mode);
    summary.directories++;
  }
  return summary;
}

function isInside(root: string, path: string): boolean {
  const fromRoot = relative(root, path);
  return fromRoot === '' || (!fromRoot.startsWith('..' + sep) && fromRoot !== '..' && !isAbsolute(fromRoot));
}

async function writeFileEntry(zip: ZipFile, item: PlannedEntry, target: string, archiveName: string): Promise<number> {
  const { entry } = item;
  if (entry.uncompressedSize < smallFileBytes) {
    const data = await readEntryBytes(zip, item, archiveName);
    // 'wx': never follow or replace something already there.
    const handle = await open(target, 'wx', item.mode);
    try {
      await handle.writeFile(data);
      await handle.chmod(item.mode); // the umask may have narrowed the mode given to open()
    } finally {
      await handle.close();
    }
    return data.length;
  }
  const checker = new CrcCheck(entry, archiveName);
  const output = createWriteStream(target, { flags: 'wx', mode: item.mode, highWaterMark: 1 << 20 });
  try {
    await pipeline(await zip.openReadStreamPromise(entry), checker, output);
  } catch (error) {
    throw wrapEntryError(error, archiveName, entry);
  }
  await chmod(target, item.mode);
  return checker.bytes;
}

async function readEntryBytes(zip: ZipFile, item: PlannedEntry, archiveName: string): Promise<Buffer> {
  const { entry } = item;
  if (item.kind === 'symlink' && entry.uncompressedSize > longestSymlinkTarget) {
    throw rejected(archiveName, entry.fileName, 'is a symlink with an overlong target');
  }
  const chunks: Buffer[] = [];
  const checker = new CrcCheck(entry, archiveName);
  try {
    const stream = (await zip.openReadStreamPromise(entry)).pipe(checker);
    for await (const chunk of stream) chunks.push(chunk as Buffer);
  } catch (error) {
    throw wrapEntryError(error, archiveName, entry);
  }
  return Buffer.concat(chunks);
}

function wrapEntryError(error: unknown, archiveName: string, entry: Entry): Error {
  if (error instanceof DeployError) return error;
  return rejected(archiveName, entry.fileName, `cannot be read (${messageOf(error)}); the archive is corrupt or truncated`);
}

/** Passes data through and fails at the end unless the CRC-32 matches the entry's (yauzl does not check it). */
class CrcCheck extends Transform {
  bytes = 0;
  private crc = 0;
  constructor(
    private readonly entry: Entry,
    private readonly archiveName: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.crc = crc32(chunk, this.crc);
    this.bytes += chunk.length;
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

async function forEachInParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure !== undefined) throw failure;
}
