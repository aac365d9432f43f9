// Files that must never be seen half-written (the state, manifests, lock owners) are written to a
// new temp file beside the target, flushed, and renamed over it; the directory is flushed so the
// rename survives a crash. The temp file is created with O_EXCL|O_NOFOLLOW under a random name:
// a symlink planted at a predictable name would otherwise make the agent (often root) write
// through it into any file. rename(2) replaces a link planted at the target itself, never what
// it points to.
import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Flags for a file the agent creates: never an existing file, never through a symlink. */
export const createNewFileFlags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * `durable: false` for notes that only inform (a lock's owner): still never seen half-written,
 * but not flushed, which cost an idle check four fsyncs for its two locks.
 */
export async function writeFileAtomically(path: string, content: string, { durable = true } = {}): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temporary, createNewFileFlags, 0o600);
  try {
    try {
      await handle.writeFile(content);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
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
