// What every zip remote (HTTP, S3, local file) shares once the archive is on disk: its revision
// is the sha256 of its bytes, so the same archive served again is never deployed twice, and it
// is staged by the one safe extractor.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createNewFileFlags } from '../atomic-file.js';
import { extractZip } from '../extract.js';
import { ensureOwnDirectory } from '../own-directory.js';
import { redact } from '../redact.js';
import { VerificationError } from '../verify/refusal.js';
import { verifySshSignature } from '../verify/ssh-signature.js';
import type { ProgressSink } from '../progress.js';
import type { CheckContext, PendingRevision, RemoteState, Unchanged } from './types.js';

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export const zipRevision = (sha256: string) => `sha256:${sha256}`;

export interface Download {
  path: string;
  sha256: string;
  bytes: number;
  /** Whether the first bytes are a zip's local header or an empty zip's end record. */
  looksLikeZip: boolean;
}

const zipMagic = [Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('PK\x05\x06', 'latin1')];

/** A temp file name in the downloads directory, removed by the caller. */
export async function downloadPath(workDirectory: string): Promise<string> {
  await ensureOwnDirectory(workDirectory);
  return join(workDirectory, `download-${randomBytes(6).toString('hex')}.zip.part`);
}

/** Streams a body to a file (never whole into memory), hashing and counting on the way. */
export async function downloadToFile(
  body: Readable | AsyncIterable<Uint8Array>,
  path: string,
  signal: AbortSignal,
  progress?: { sink: ProgressSink | undefined; total: number },
): Promise<Download> {
  const hash = createHash('sha256');
  let bytes = 0;
  let head = Buffer.alloc(0);
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      if (head.length < 4) head = Buffer.concat([head, chunk.subarray(0, 4 - head.length)]);
      progress?.sink?.advance(chunk.length);
      callback(null, chunk);
    },
  });
  progress?.sink?.start('Downloading', progress.total);
  try {
    const file = await open(path, createNewFileFlags, 0o600);
    await pipeline(body, measure, file.createWriteStream({ highWaterMark: 1 << 20 }), { signal });
  } finally {
    progress?.sink?.stop();
  }
  return { path, sha256: hash.digest('hex'), bytes, looksLikeZip: zipMagic.some((magic) => head.equals(magic)) };
}

export interface ZipOnDisk {
  path: string;
  sha256: string;
  /** Appended to the revision, e.g. an S3 object's version. */
  revisionSuffix?: string;
  remoteState: RemoteState;
  /** Whether the file is a download of ours, to delete when done. */
  temporary: boolean;
  /** Throws if the archive changed since it was hashed; run before and after extraction. */
  verifyUnchanged?: () => Promise<void>;
  /** Writes `<remote>.sig` to `destination`; false when the remote has none. */
  fetchSignature?: (destination: string) => Promise<boolean>;
}

/**
 * The operator's trust settings, applied to the archive's bytes before anything is extracted:
 * checksum pins one archive; allowed-signers requires a good detached SSH signature.
 */
async function verifyArchive(context: CheckContext, zip: ZipOnDisk, revision: string): Promise<void> {
  const { settings } = context;
  const display = redact(context.remote);
  const refuse = (reason: string) => new VerificationError(`refused ${display} (sha256 ${zip.sha256.slice(0, 12)}): ${reason}`, revision, zip.remoteState);
  if (settings.checksum && settings.checksum !== zipRevision(zip.sha256)) {
    throw refuse(`its sha256 is not the one pinned by checksum (${settings.checksum.slice(0, 19)}...)`);
  }
  if (!settings.allowedSigners) return;
  if (!zip.fetchSignature) throw refuse('this remote cannot carry a signature');
  // In our downloads directory: beside a local archive is the operator's own signature file.
  await ensureOwnDirectory(context.workDirectory);
  const signaturePath = join(context.workDirectory, `signature-${randomBytes(6).toString('hex')}.sig`);
  try {
    if (!(await zip.fetchSignature(signaturePath))) throw refuse(`there is no signature ${display}.sig beside it`);
    const signer = await verifySshSignature(settings.allowedSigners, zip.path, signaturePath).catch((error: Error) => {
      throw refuse(error.message);
    });
    context.log.info(`archive ${display} is signed by ${signer}`, { revision });
  } finally {
    await rm(signaturePath, { force: true });
  }
}

export async function zipCheckResult(context: CheckContext, zip: ZipOnDisk): Promise<Unchanged | PendingRevision> {
  const revision = zipRevision(zip.sha256) + (zip.revisionSuffix ?? '');
  const dispose = async () => {
    if (zip.temporary) await rm(zip.path, { force: true });
  };
  if (context.deployed?.revision === revision) {
    await dispose();
    return { changed: false, remoteState: zip.remoteState };
  }
  try {
    await verifyArchive(context, zip, revision);
  } catch (error) {
    await dispose();
    throw error;
  }
  const { settings } = context;
  return {
    changed: true,
    revision,
    description: `archive ${redact(context.remote)} (sha256 ${zip.sha256.slice(0, 12)})`,
    remoteState: zip.remoteState,
    async stage(directory) {
      await zip.verifyUnchanged?.();
      const summary = await extractZip(
        zip.path,
        directory,
        { maxUnpackedBytes: settings.maxUnpackedBytes, maxEntries: settings.maxEntries },
        redact(context.remote),
        context.progress,
      );
      await zip.verifyUnchanged?.();
      context.log.info(`extracted ${summary.files} files, ${summary.directories} directories, ${summary.symlinks} symlinks (${summary.bytes} bytes)`);
    },
    dispose,
  };
}
