// A zip on this machine's disk (a path or a file:// URL). Unchanged when its size, time and inode
// are the ones deployed, or, failing that, when its bytes hash to the deployed revision.
import { constants } from 'node:fs';
import { copyFile, stat } from 'node:fs/promises';
import { fetchError, systemErrorCode } from '../errors.js';
import type { LocalZipRemote } from '../remote.js';
import type { Fetcher, RemoteState } from './types.js';
import { sha256OfFile, zipCheckResult } from './zip-release.js';

async function fingerprint(path: string): Promise<RemoteState> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw fetchError(`the remote ${path} is not a file`);
    return { size: String(info.size), mtimeMs: String(info.mtimeMs), inode: String(info.ino) };
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') {
      throw fetchError(`the remote ${path} does not exist`, { hint: 'check the path, or whether the build that writes it ran' });
    }
    throw error;
  }
}

const sameFingerprint = (a: RemoteState, b: RemoteState | undefined) =>
  b !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs && a.inode === b.inode;

export const localZipFetcher = ({ path, display }: LocalZipRemote): Fetcher => ({
  async check(context) {
    const remoteState = await fingerprint(path);
    if (context.deployed?.sameRemote && sameFingerprint(remoteState, context.deployed.remoteState)) {
      return { changed: false };
    }
    const sha256 = await sha256OfFile(path);
    return zipCheckResult(context, {
      path,
      display,
      sha256,
      remoteState,
      temporary: false,
      fetchSignature: async (destination) => {
        try {
          await copyFile(`${path}.sig`, destination, constants.COPYFILE_EXCL);
          return true;
        } catch (error) {
          if (systemErrorCode(error) === 'ENOENT') return false;
          throw error;
        }
      },
      // The file may be replaced between the check and the extraction; deploy only what was hashed.
      verifyUnchanged: async () => {
        if (!sameFingerprint(await fingerprint(path), remoteState)) {
          throw fetchError(`the remote ${path} changed while it was being deployed`, {
            hint: 'the next check deploys the new file',
          });
        }
      },
    });
  },
});
