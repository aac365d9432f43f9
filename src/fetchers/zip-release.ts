// What every zip remote (HTTP, S3, local file) shares once the archive is on disk: its revision
// is the sha256 of its bytes, so the same archive served again is never deployed twice, and it
// is staged by the one safe extractor.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { extractZip } from '../extract.js';
import { redact } from '../redact.js';
import type { CheckContext, PendingRevision, RemoteState, Unchanged } from './types.js';

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export const zipRevision = (sha256: string) => `sha256:${sha256}`;

export interface ZipOnDisk {
  path: string;
  sha256: string;
  remoteState: RemoteState;
  /** Whether the file is a download of ours, to delete when done. */
  temporary: boolean;
  /** Throws if the archive changed since it was hashed; run before and after extraction. */
  verifyUnchanged?: () => Promise<void>;
}

export function zipCheckResult(context: CheckContext, zip: ZipOnDisk): Unchanged | PendingRevision {
  const revision = zipRevision(zip.sha256);
  const dispose = async () => {
    if (zip.temporary) await rm(zip.path, { force: true });
  };
  if (context.deployed?.revision === revision) {
    void dispose();
    return { changed: false, remoteState: zip.remoteState };
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
      );
      await zip.verifyUnchanged?.();
      context.log.info(`extracted ${summary.files} files, ${summary.directories} directories, ${summary.symlinks} symlinks (${summary.bytes} bytes)`);
    },
    dispose,
  };
}
