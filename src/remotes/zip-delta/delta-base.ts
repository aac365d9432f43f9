// The last archive downloaded from a zip remote, kept in <cache>/delta-base/ so the next new
// archive can be rebuilt from it plus the entries that changed (src/remotes/zip-delta/rebuild.ts).
// One per remote, named by the hash of the remote's address, beside a note of its sha256 and
// size. Only archives the extractor accepted (or that equal the live revision) are kept.
//
// What is reused from it is the compressed data of entries whose name, CRC-32, sizes and method
// are the same in the new archive; the rebuilt archive is then hashed and checked whole, and
// extracted by the extractor that checks every entry's CRC-32.
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../../base/atomic-file.js';
import { moveFile } from '../../base/move-file.js';
import { ensureOwnDirectory } from '../../base/own-directory.js';
import { readSmallRegularFile } from '../../base/small-file.js';
import type { CacheLayout } from '../../core/cache-layout.js';

export interface DeltaBase {
  path: string;
  sha256: string;
  bytes: number;
}

interface BaseFiles {
  archive: string;
  note: string;
}

/** Private, as the archives in it are (mode 600): a release may hold what only its service should read. */
async function ensureBaseDirectory(cache: CacheLayout): Promise<void> {
  await ensureOwnDirectory(cache.deltaBases);
  await chmod(cache.deltaBases, 0o700);
}

function baseFilesFor(cache: CacheLayout, identity: string): BaseFiles {
  const name = join(cache.deltaBases, identity.slice(0, 24));
  return { archive: `${name}.zip`, note: `${name}.json` };
}

/**
 * This remote's kept archive, or undefined. A note that does not parse, an archive that is not
 * our own regular file, or one of another size than noted is removed.
 */
export async function findDeltaBase(cache: CacheLayout, identity: string): Promise<DeltaBase | undefined> {
  await ensureBaseDirectory(cache);
  const files = baseFilesFor(cache, identity);
  let note: { identity?: unknown; sha256?: unknown; bytes?: unknown };
  try {
    note = JSON.parse(readSmallRegularFile(files.note, 4096)) as typeof note;
  } catch {
    await dropFiles(files);
    return undefined;
  }
  const archive = await lstat(files.archive).catch(() => undefined);
  const { sha256, bytes } = note;
  const usable =
    archive?.isFile() && archive.uid === (process.geteuid?.() ?? 0) && note.identity === identity && typeof sha256 === 'string' && /^[0-9a-f]{64}$/.test(sha256) &&
    typeof bytes === 'number' && archive.size === bytes;
  if (!usable) {
    await dropFiles(files);
    return undefined;
  }
  return { path: files.archive, sha256: sha256 as string, bytes: bytes as number };
}

/** Moves a download into place as this remote's base. */
export async function keepAsDeltaBase(cache: CacheLayout, identity: string, path: string, sha256: string): Promise<void> {
  await ensureBaseDirectory(cache);
  const { size } = await lstat(path);
  const files = baseFilesFor(cache, identity);
  // The note goes first and comes back last: a kill -9 in between leaves an archive without a
  // note, which findDeltaBase removes.
  await rm(files.note, { force: true });
  await rm(files.archive, { force: true });
  await moveFile(path, files.archive);
  await writeFileAtomically(files.note, JSON.stringify({ identity, sha256, bytes: size }) + '\n', { durable: false });
}

export async function dropDeltaBase(cache: CacheLayout, identity: string): Promise<void> {
  await dropFiles(baseFilesFor(cache, identity));
}

async function dropFiles(files: BaseFiles): Promise<void> {
  await rm(files.note, { force: true });
  await rm(files.archive, { force: true });
}

/** Bases no check has used for `unusedForMs` (a remote since changed) are removed, but never `identity`'s own. */
export async function removeUnusedDeltaBases(cache: CacheLayout, identity: string, now: Date, unusedForMs: number): Promise<void> {
  const own = new Set(Object.values(baseFilesFor(cache, identity)));
  for (const name of await readdir(cache.deltaBases).catch(() => [] as string[])) {
    const path = join(cache.deltaBases, name);
    if (own.has(path)) continue;
    const info = await lstat(path).catch(() => undefined);
    if (info && now.getTime() - info.mtimeMs > unusedForMs) await rm(path, { recursive: true, force: true });
  }
}
