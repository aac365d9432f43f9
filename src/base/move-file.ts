// A rename that also works when the two directories are on different filesystems (an operator
// may mount a directory of the cache apart): rename(2) answers EXDEV there, and the file is
// copied (never over an existing file) and the original removed.
import { constants } from 'node:fs';
import { copyFile, rename, rm } from 'node:fs/promises';
import { systemErrorCode } from './errors.js';

export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if (systemErrorCode(error) !== 'EXDEV') throw error;
    try {
      await copyFile(from, to, constants.COPYFILE_EXCL);
    } catch (copyError) {
      await rm(to, { force: true });
      throw copyError;
    }
    await rm(from, { force: true });
  }
}
