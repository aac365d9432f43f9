// An exclusive flock(2) lock on a file only the agent's own user can open, which the kernel
// releases the instant the agent exits (kill -9 included), and which no one else can take, hold
// or delay.
//
// Why flock(2): the lock belongs to the agent's open file description, so it dies with the
// process; there is no stale lock to take over and so no takeover race. Why only our user: anyone
// who can open a file (reading is enough) can flock it, and anyone who can write its directory
// can swap the file for another, so that two agents lock two different files. So the file is
// created 0600 by us, opened without following links, checked to be ours after opening, and its
// directory must be writable by its owner alone (us or root).
//
// Node 20 has no flock in core. Rather than a native addon (fs-ext: a node-gyp build at install,
// a compiler on every server), util-linux's flock(1), present on every Linux host, is given our
// open file as its descriptor 3: it locks that open file description, which it shares with us,
// and exits. The lock then stays with our descriptor, and closing it is the release: nothing a
// stranger does (there is no socket, nothing accepts connections) can delay that or the exit.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DeployError, permissionError, usageError } from './errors.js';

/** flock(1)'s exit status when `--nonblock` finds the lock held (chosen apart from its own errors). */
const heldExitCode = 75;

const ownUser = () => process.geteuid?.() ?? 0;

/** The lock's directory must be writable by its owner only, and that owner must be us or root. */
async function assertPrivateDirectory(directory: string): Promise<void> {
  const info = await stat(directory);
  const owner = info.uid === ownUser() || info.uid === 0;
  if (!owner || (info.mode & 0o022) !== 0) {
    throw usageError(
      `${directory} can be written by users other than the agent's (owner uid ${info.uid}, mode ${(info.mode & 0o7777).toString(8)}); a lock there could be taken or swapped by them`,
      `make it writable by its owner only (chown root ${directory} && chmod go-w ${directory}), or choose another directory`,
    );
  }
}

/** Opens (creating 0600) the lock file, refusing links, non-files and files others could open. */
async function openOwnLockFile(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO planted at the name must not hang the open.
    handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (error) {
    const denied = permissionError(error);
    if (denied) throw denied;
    throw usageError(`the lock file ${path} cannot be opened (${(error as Error).message})`, `remove whatever is at ${path}; repo-deploy creates the lock file itself`);
  }
  const info = await handle.stat();
  if (!info.isFile() || info.uid !== ownUser() || (info.mode & 0o077) !== 0) {
    await handle.close();
    throw usageError(
      `the lock file ${path} is not a regular file of the agent's own user with mode 600 (owner uid ${info.uid}, mode ${(info.mode & 0o7777).toString(8)}); another user could hold it`,
      `remove it (rm ${path}); repo-deploy creates it again, private`,
    );
  }
  return handle;
}

/** Asks flock(1) to lock our open file description without waiting: true when we now hold it. */
function tryLock(handle: FileHandle, path: string): Promise<boolean> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('flock', ['--nonblock', '--exclusive', '--conflict-exit-code', String(heldExitCode), '3'], {
      stdio: ['ignore', 'ignore', 'pipe', handle.fd],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString('utf8');
    });
    child.on('error', (error) =>
      reject(new DeployError('internal', `cannot run flock(1) to take the lock ${path}: ${error.message}`, { hint: 'install util-linux (it provides flock)' })),
    );
    child.on('close', (code) => {
      if (code === 0) resolvePromise(true);
      else if (code === heldExitCode) resolvePromise(false);
      else reject(new DeployError('internal', `flock(1) failed on the lock ${path} (exit ${code}): ${stderr.trim()}`));
    });
  });
}

export interface HeldFileLock {
  /** Closes our descriptor: the kernel drops the lock at once, whoever else is around. */
  release(): Promise<void>;
}

/** Takes the lock if it is free: undefined when another process holds it. */
export async function tryFileLock(path: string): Promise<HeldFileLock | undefined> {
  await assertPrivateDirectory(dirname(path));
  const handle = await openOwnLockFile(path);
  let locked = false;
  try {
    locked = await tryLock(handle, path);
  } finally {
    if (!locked) await handle.close();
  }
  if (!locked) return undefined;
  return { release: () => handle.close() };
}
