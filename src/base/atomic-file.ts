// Files that must never be seen half-written (the state, manifests, lock owners) are written to a
// new temp file beside the target, flushed, and renamed over it; the directory is flushed so the
// rename survives a crash. The temp file is created with O_EXCL|O_NOFOLLOW under a random name:
// a symlink planted at a predictable name would otherwise make the agent (often root) write
// through it into any file. rename(2) replaces a link planted at the target itself, never what
// it points to.
import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { processStartTime } from './process-identity.js';
import { pausePoint } from './test-pause.js';

/** Flags for a file the agent creates: never an existing file, never through a symlink. */
export const createNewFileFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * `durable: false` for notes that only inform (a lock's owner): still never seen half-written,
 * but not flushed, which cost an idle check four fsyncs for its two locks.
 */
export async function writeFileAtomically(path: string, content: string | Uint8Array, { durable = true } = {}): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temporary, createNewFileFlags, 0o600);
  try {
    try {
      await handle.writeFile(content);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await pausePoint(`write ${basename(path)}`);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  if (durable) await syncDirectory(dirname(path));
}

/** Flushes a directory's entries (a rename or a new link) to disk. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `.<name>.<pid>.<8 hex>.tmp`: the temporary files writeFileAtomically makes, and nothing else. */
const temporaryName = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes the temporary files of writeFileAtomically in `directory` that a killed process left
 * (kill -9 between their creation and the rename leaves them forever). A file whose writer is
 * still running is kept: the pause command writes without the agent's lock. Run under the lock.
 */
export async function removeStaleTemporaryFiles(directory: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(directory).catch(() => [] as string[])) {
    const writer = temporaryName.exec(name)?.[2];
    if (writer === undefined || Number(writer) === process.pid || (await processStartTime(Number(writer))) !== undefined) continue;
    // Not recursive: a directory of that name is no file of ours, and is left alone.
    if (await rm(join(directory, name), { force: true }).then(() => true, () => false)) removed.push(join(directory, name));
  }
  return removed;
}
