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

/** flock(1) run on each descriptor from 3 on, in order, by one shell: the first it finds held (or fails on) ends it. */
const lockEachScript =
  'k=0; for fd in "$@"; do flock --nonblock --exclusive --conflict-exit-code 75 "$fd"; status=$?; ' +
  'if [ "$status" -eq 75 ]; then exit $((100 + k)); elif [ "$status" -ne 0 ]; then exit $((150 + k)); fi; k=$((k + 1)); done';

/**
 * Asks flock(1) to lock our open file descriptions without waiting, all in one child process: a
 * fork of the agent costs its main thread a few milliseconds that grow with its memory, and a
 * daemon of many apps takes these locks at every check. Resolves with the index of the first
 * lock another process holds (the ones before it are then ours: closing them frees them), or
 * undefined when all are ours.
 */
function tryLocks(handles: FileHandle[], paths: string[]): Promise<number | undefined> {
  return new Promise((resolvePromise, reject) => {
    const descriptors = handles.map((_, index) => String(3 + index));
    // One lock (the history's, the outbox's): flock(1) itself, its exit codes mapped to the
    // script's, without the shell's start (measured: 10 ms against 6 ms per lock taken).
    const [command, args] =
      handles.length === 1 ? ['flock', ['--nonblock', '--exclusive', '--conflict-exit-code', String(heldExitCode), '3']] : ['/bin/sh', ['-c', lockEachScript, 'lock', ...descriptors]];
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe', ...handles.map((handle) => handle.fd)] });
    const single = handles.length === 1;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 2000) stderr += chunk.toString('utf8');
    });
    child.on('error', (error) =>
      reject(new DeployError('internal', `cannot run flock(1) to take the lock ${paths.join(' and ')}: ${error.message}`, { hint: 'install util-linux (it provides flock)' })),
    );
    child.on('close', (exitCode) => {
      const code = single && exitCode !== 0 && exitCode !== null ? (exitCode === heldExitCode ? 100 : 150) : exitCode;
      if (code === 0) resolvePromise(undefined);
      else if (code !== null && code >= 100 && code < 100 + handles.length) resolvePromise(code - 100);
      else {
        const failed = code !== null && code >= 150 && code < 150 + handles.length ? paths[code - 150] : paths.join(' and ');
        reject(new DeployError('internal', `flock(1) failed on the lock ${failed} (exit ${code}): ${stderr.trim() || 'is util-linux installed?'}`, { hint: 'install util-linux (it provides flock)' }));
      }
    });
  });
}

export interface HeldFileLock {
  /** Closes our descriptor: the kernel drops the lock at once, whoever else is around. */
  release(): Promise<void>;
}

/**
 * Takes every lock if all are free, or none: `held` is the index of a lock another process holds.
 * One flock(1) run for all of them (see tryLocks).
 */
export async function tryFileLocks(paths: string[]): Promise<{ locks: HeldFileLock[] } | { held: number }> {
  const handles: FileHandle[] = [];
  let taken = false;
  try {
    for (const path of paths) {
      await assertPrivateDirectory(dirname(path));
      handles.push(await openOwnLockFile(path));
    }
    const held = await tryLocks(handles, paths);
    if (held !== undefined) return { held };
    taken = true;
    return { locks: handles.map((handle) => ({ release: () => handle.close() })) };
  } finally {
    if (!taken) await Promise.all(handles.map((handle) => handle.close()));
  }
}
