// A download cut short (kill -9, a stop, the network) is not started again from zero: its bytes
// stay in <cache>/partial/ under a name derived from the remote, beside a note of what they are a
// prefix of (the object's validator, its whole size). The next check asks for the rest only
// (HTTP `Range` with `If-Range`, S3 `Range` with `IfMatch`), so the server sends the rest only if
// the object is still the same one, and the whole new object otherwise. Whatever is resumed is
// still hashed whole (its sha256 is the revision), checked against a signature or checksum when
// set, and extracted by the extractor that checks every entry's CRC-32.
//
// Only the agent's lock holder downloads, so one remote's partial file has one writer. A partial
// file untouched for a week (a remote since changed) is removed by the next locked run.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../base/atomic-file.js';
import { moveFile } from '../base/move-file.js';
import type { Logger } from '../base/log.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import { readSmallRegularFile } from '../base/small-file.js';
import type { CacheLayout } from '../core/cache-layout.js';
import type { CheckContext } from '../core/remote-contract.js';
import type { ZipSettings } from '../core/settings.js';
import { receiveArchive, type Download, type IncomingArchive, type ResumedPrefix } from './zip-release.js';
import { parseContentRange } from './zip-delta/ranges-answered.js';

export interface PartialFiles {
  /** The bytes received so far. */
  part: string;
  /** What they are a prefix of: { identity, validator, total }. */
  note: string;
  /** The hash of the remote's address (its credentials included, never written in clear). */
  identity: string;
}

/** What the next request may resume: `bytes` of an object of `total` bytes that `validator` names. */
export interface Resumable {
  bytes: number;
  total: number;
  /** A strong ETag, or a Last-Modified date (HTTP), or an S3 ETag. */
  validator: string;
}

/** A note older than this is a remote's that no check asks for any more. */
const abandonedAfterMs = 7 * 24 * 3600 * 1000;

/** The files of one remote's partial download (the directory is made, private). */
export async function partialFilesFor(cache: CacheLayout, remoteAddress: string): Promise<PartialFiles> {
  await ensureOwnDirectory(cache.partialDownloads);
  const identity = createHash('sha256').update(remoteAddress).digest('hex');
  const base = join(cache.partialDownloads, identity.slice(0, 24));
  return { part: `${base}.zip.part`, note: `${base}.json`, identity };
}

/**
 * The partial download that can be resumed, or undefined. Anything that does not add up (no note,
 * a note of another remote or unreadable, a part that is not our regular file, empty, or not
 * shorter than the whole) is removed: the download then starts from zero.
 */
async function findResumable(files: PartialFiles): Promise<Resumable | undefined> {
  let note: { identity?: unknown; validator?: unknown; total?: unknown };
  try {
    note = JSON.parse(readSmallRegularFile(files.note, 4096)) as typeof note;
  } catch {
    await discardPartial(files);
    return undefined;
  }
  const part = await lstat(files.part).catch(() => undefined);
  const { identity, validator, total } = note;
  const usable =
    part?.isFile() && part.uid === (process.geteuid?.() ?? 0) && identity === files.identity && typeof validator === 'string' && validator.length > 0 && validator.length <= 1024 &&
    typeof total === 'number' && Number.isSafeInteger(total) && part.size > 0 && part.size < total;
  if (!usable) {
    await discardPartial(files);
    return undefined;
  }
  return { bytes: part!.size, total: total as number, validator: validator as string };
}

/** Written once the response's headers say what the bytes are, before the first byte is kept. */
async function rememberPartial(files: PartialFiles, validator: string, total: number): Promise<void> {
  await writeFileAtomically(files.note, JSON.stringify({ identity: files.identity, validator, total }) + '\n', { durable: false });
}

export async function discardPartial(files: PartialFiles): Promise<void> {
  await rm(files.note, { force: true });
  await rm(files.part, { force: true });
}

/** A whole download: the part moved to `path` (a download file of its own, removed after staging) and its note dropped. */
async function completePartial(files: PartialFiles, path: string): Promise<void> {
  await rm(files.note, { force: true });
  await moveFile(files.part, path);
}

/** A partial download to resume, its prefix hashed already (see receiveKeepingPartial). */
export interface PreparedResume extends Resumable {
  prefix: ResumedPrefix;
}

/**
 * Before the request: the partial download of this remote that can be resumed, with its bytes
 * hashed. Hashed now, not once the answer's headers are in: nothing may come between the headers
 * and reading the body, since a server that closes early takes what was buffered in between with it.
 */
export async function prepareResume(files: PartialFiles): Promise<PreparedResume | undefined> {
  const resumable = await findResumable(files);
  if (!resumable) return undefined;
  return { ...resumable, prefix: { bytes: resumable.bytes, ...(await hashOfPrefix(files.part, resumable.bytes)) } };
}

/**
 * Receives an archive into the partial file when it can be resumed later (`resume` given, or the
 * server named this version with `validator` and said its size), its note written while the body
 * streams, and moves it to `plainPath` once whole; else straight into `plainPath`. On a failure,
 * what arrived is kept if it is a part of the whole.
 */
export async function receiveKeepingPartial(
  context: CheckContext<ZipSettings>,
  files: PartialFiles,
  incoming: Omit<IncomingArchive, 'path' | 'resumed'>,
  resume: PreparedResume | undefined,
  validator: string | undefined,
  plainPath: string,
): Promise<Download> {
  const keeping = resume !== undefined || (validator !== undefined && incoming.announcedBytes !== undefined);
  if (resume) context.log.info(`resuming the download of ${incoming.display} at ${resume.bytes} of ${resume.total} bytes`);
  const noting = !resume && keeping ? rememberPartial(files, validator!, incoming.announcedBytes!) : Promise.resolve();
  try {
    const download = await receiveArchive(context, { ...incoming, path: keeping ? files.part : plainPath, resumed: resume?.prefix });
    await noting;
    if (keeping) await completePartial(files, plainPath);
    return { ...download, path: plainPath };
  } catch (error) {
    await noting.catch(() => undefined);
    if (keeping) await keepOrDiscard(files, context.log, incoming.display);
    throw error;
  }
}

/** After a failed download: what arrived is kept to be resumed if it is a part of the whole (else removed), and said. */
async function keepOrDiscard(files: PartialFiles, log: Logger, display: string): Promise<void> {
  const kept = await findResumable(files);
  if (kept) log.info(`${kept.bytes} of ${kept.total} bytes of ${display} are kept; the next check asks for the rest only`);
}

/** The sha256 state and first bytes of what was kept, to go on hashing where it ends. */
async function hashOfPrefix(path: string, bytes: number): Promise<Omit<ResumedPrefix, 'bytes'>> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  let head = Buffer.alloc(0);
  try {
    for (let position = 0; position < bytes; ) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, bytes - position), position);
      if (bytesRead === 0) throw new Error(`the partial download ${path} is shorter than ${bytes} bytes`);
      if (position === 0) head = Buffer.from(buffer.subarray(0, Math.min(4, bytesRead)));
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await file.close();
  }
  return { hash, head };
}

/** Removes partial downloads no check has touched for a week (a remote since changed). Run under the lock. */
export async function removeAbandonedPartials(cache: CacheLayout, now: Date): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(cache.partialDownloads).catch(() => [] as string[])) {
    const path = join(cache.partialDownloads, name);
    const info = await lstat(path).catch(() => undefined);
    if (info && now.getTime() - info.mtimeMs > abandonedAfterMs) {
      await rm(path, { recursive: true, force: true });
      removed.push(path);
    }
  }
  return removed;
}

/** Whether a 206's `bytes START-END/TOTAL` is exactly the rest that was asked for, of an object of the size remembered. */
export function isTheRest(contentRange: string | undefined, resumable: Resumable): boolean {
  const answered = parseContentRange(contentRange);
  return answered !== undefined && answered.start === resumable.bytes && answered.end === resumable.total && answered.total === resumable.total;
}
