// The directories the agent writes in as root (the cache, releases/) must be its own: a symlink
// planted in their place would make it create, overwrite and delete files wherever the link
// points. They are created when missing and refused, never followed, when they are links.
import { lstat, mkdir } from 'node:fs/promises';
import { usageError } from './errors.js';

export async function ensureOwnDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o755 });
  const info = await lstat(path);
  if (info.isSymbolicLink()) {
    throw usageError(
      `${path} is a symbolic link; repo-deploy does not follow links for the directories it writes in`,
      `point the setting at the real directory instead, or replace the link with a directory (rm ${path} && mkdir ${path})`,
    );
  }
  if (!info.isDirectory()) throw usageError(`${path} is not a directory`, `remove it or choose another path`);
}
