// A zip on this machine's disk (a path or a file:// URL). Unchanged when its size, time and inode
// are the ones deployed; otherwise it is copied once into our own downloads/ (hashed while it is
// copied) and only that copy is verified and extracted, as HTTP and S3 downloads are. The drop
// folder's account (the one allowed-signers exists to distrust) can rewrite its file at any
// time, keeping size, mtime and inode: reading the operator's path again after the check would
// deploy whatever is there then, under the checked archive's revision.
import { constants, createReadStream } from 'node:fs';
import { copyFile, open, rm, type FileHandle } from 'node:fs/promises';
import { newDownloadFile } from '../core/cache-layout.js';
import { fetchError, systemErrorCode } from '../base/errors.js';
import type { LocalZipRemote } from '../core/remote.js';
import type { Fetcher, RemoteState } from '../core/remote-contract.js';
import type { ZipSettings } from '../core/settings.js';
import { downloadLimitsFor, downloadToFile, zipCheckResult } from './zip-release.js';

/** Opens the archive (never hanging on a FIFO planted in its place) and fingerprints what was opened. */
async function openArchive(path: string): Promise<{ file: FileHandle; remoteState: RemoteState }> {
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') {
      throw fetchError(`the remote ${path} does not exist`, { hint: 'check the path, or whether the build that writes it ran' });
    }
    throw error;
  }
  const info = await file.stat();
  if (!info.isFile()) {
    await file.close();
    throw fetchError(`the remote ${path} is not a file`);
  }
  return { file, remoteState: { size: String(info.size), mtimeMs: String(info.mtimeMs), inode: String(info.ino) } };
}

const sameFingerprint = (a: RemoteState, b: RemoteState | undefined) =>
  b !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.inode === b.inode;

export const localZipFetcher = ({ path, display }: LocalZipRemote): Fetcher<ZipSettings> => ({
  async check(context) {
    const { file, remoteState } = await openArchive(path);
    let copy: string | undefined;
    try {
      if (context.deployed?.sameRemote && sameFingerprint(remoteState, context.deployed.remoteState)) {
        return { changed: false };
      }
      copy = await newDownloadFile(context.cache, 'download');
      // The bytes read here are the ones hashed, verified and extracted: there is no second read.
      // 1 MiB reads: at the default 64 KiB, copying a 225 MiB archive took 3,600 reads and writes,
      // each a thread-pool round trip.
      const archive = createReadStream('', { fd: file, autoClose: false, highWaterMark: 1 << 20 });
      const download = await downloadToFile(archive, copy, context.signal, downloadLimitsFor(context, display));
      if (!download.looksLikeZip) throw fetchError(`cannot deploy ${display}: it is not a zip archive`);
      const result = await zipCheckResult(context, {
        path: copy,
        display,
        sha256: download.sha256,
        remoteState,
        temporary: true,
        fetchSignature: async (destination) => {
          try {
            await copyFile(`${path}.sig`, destination, constants.COPYFILE_EXCL);
            return true;
          } catch (error) {
            if (systemErrorCode(error) === 'ENOENT') return false;
            throw error;
          }
        },
      });
      copy = undefined; // zipCheckResult owns it now (and removes it when done)
      return result;
    } finally {
      await file.close();
      if (copy) await rm(copy, { force: true });
    }
  },
});
