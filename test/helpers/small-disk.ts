// A small filesystem of its own (tmpfs), so a test can fill it: the agent's behaviour on a full
// disk is only proven on a disk that is really full. Needs the right to mount (tests run as
// root); where mounting is refused the test is skipped, saying why. Unmounted when the test ends.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Mounts a tmpfs of `size` (`8m`, `64k`) at `at` (made if absent), or at a new directory of its
 * own, and returns its path, or undefined (the test skipped) where mounting is refused. Unmounted
 * by an after hook: a test mounting inside a directory of its own removes that directory in a
 * hook registered later (hooks run in the order registered).
 */
export async function smallDisk(t: TestContext, size: string, at?: string): Promise<string | undefined> {
  const directory = at ?? (await mkdtemp(join(tmpdir(), 'repo-deploy-small-disk-')));
  if (at) await mkdir(at, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', directory]);
  } catch (error) {
    if (!at) await rm(directory, { recursive: true, force: true });
    t.skip(`a full disk needs a small filesystem of its own, and mounting a tmpfs was refused here (${(error as Error).message.split('\n')[0]}); run the tests as root where mount is allowed`);
    return undefined;
  }
  t.after(async () => {
    // Lazily only when busy: a process the test stopped may still hold a file open for a moment.
    await run('umount', [directory]).catch(() => run('umount', ['-l', directory]));
    if (!at) await rm(directory, { recursive: true, force: true });
  });
  return directory;
}

/**
 * A shell command that fills the filesystem holding `path` to the last byte, with the file `path`.
 * Filled, flushed, and topped up twice: ext4 reserves blocks for writes not yet flushed and gives
 * back what it did not use when they are, so a disk filled once could have room again a moment
 * later (a CI run under load saw a state file saved there).
 */
export const fillCommand = (path: string) => `cat /dev/zero > "${path}" 2>/dev/null; sync; cat /dev/zero >> "${path}" 2>/dev/null; sync; cat /dev/zero >> "${path}" 2>/dev/null`;
