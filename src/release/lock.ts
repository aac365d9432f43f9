// One agent at a time per cache and per live path: a cron `-f` run and a daemon never interleave.
//
// Each lock is an flock(2) on a private file (src/file-lock.ts): only the agent's own user can
// open it, and the kernel frees it the instant its holder exits (kill -9 included). So there is
// no stale lock to take over, no takeover race, and no instant between "taken" and "owner
// recorded" at which a crash leaves a lock nobody can take. (A lock file whose existence is the
// lock, plus a takeover of a dead holder's lock, cannot be made race-free: two processes that both
// saw the dead holder can each remove what the other just created.) Earlier versions used a
// socket in Linux's abstract namespace, which has no permissions: any local user could take its
// name first or connect to it and never hang up, blocking or freezing the agent.
//
// Beside it, `<lock>.owner` tells an operator who holds it. It is information only, written
// atomically after the lock is taken; a stale one is harmless and overwritten by the next holder.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomically } from '../base/atomic-file.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { DeployError } from '../base/errors.js';
import { tryFileLocks, type HeldFileLock } from '../base/file-lock.js';
import type { Logger } from '../base/log.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import { processStartTime } from '../base/process-identity.js';
import { pausePoint } from '../base/test-pause.js';

export interface LockOptions {
  cacheDirectory: string;
  livePath: string;
  /** How long to wait for a held lock; 0 fails at once. */
  waitMs: number;
  log: Logger;
}

export type ReleaseLock = () => Promise<void>;

export interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

const retryEveryMs = 200;

export function lockPaths(cacheDirectory: string, livePath: string): string[] {
  return [cacheLayoutFor(cacheDirectory).lockFile, join(dirname(livePath), `.${basename(livePath)}.lock`)];
}

export async function acquireLocks(options: LockOptions): Promise<ReleaseLock> {
  await ensureOwnDirectory(options.cacheDirectory);
  await mkdir(dirname(options.livePath), { recursive: true });
  const paths = lockPaths(options.cacheDirectory, options.livePath);
  // All or none, retried until waitMs: a run waiting for one lock holds no other meanwhile.
  const deadline = Date.now() + options.waitMs;
  let attempt = await tryFileLocks(paths);
  while ('held' in attempt && Date.now() < deadline) {
    await sleep(retryEveryMs);
    attempt = await tryFileLocks(paths);
  }
  if ('held' in attempt) {
    const path = paths[attempt.held]!;
    const owner = await readOwner(path);
    const holder = owner && owner.pid !== process.pid ? ` (process ${owner.pid} on ${owner.host} has held it since ${owner.since})` : '';
    throw new DeployError('lock', `another repo-deploy run holds the lock ${path}`, {
      hint: `wait for it to finish${holder}; a lock dies with the process that held it`,
    });
  }
  const releases: ReleaseLock[] = [];
  const { locks } = attempt;
  try {
    for (const [index, path] of paths.entries()) releases.push(await noteOwner(path, locks[index]!, options));
  } catch (error) {
    // noteOwner released the lock it failed on; the ones after it are released here.
    for (const release of releases.reverse()) await release();
    for (const lock of locks.slice(releases.length + 1)) await lock.release();
    throw error;
  }
  return async () => {
    for (const release of releases.reverse()) await release();
  };
}

const ownerFile = (path: string) => `${path}.owner`;

/**
 * Who holds the agent's lock now, as far as its owner note and the process table tell, without
 * touching the lock (a probe could make a cron -f run starting at that instant fail).
 */
export async function currentLockHolder(cacheDirectory: string): Promise<LockOwner | undefined> {
  const owner = await readOwner(cacheLayoutFor(cacheDirectory).lockFile);
  if (!owner || owner.host !== hostname() || (await processStartTime(owner.pid)) === undefined) return undefined;
  return owner;
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(ownerFile(path), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Leaves a note of who holds a lock just taken (for status and for a run that finds it held); returns what releases it. */
async function noteOwner(path: string, lock: HeldFileLock, options: LockOptions): Promise<ReleaseLock> {
  await pausePoint('lock-taken');
  const previous = await readOwner(path);
  if (previous && previous.host === hostname() && previous.pid !== process.pid && (await processStartTime(previous.pid)) === undefined) {
    options.log.info(`taking over the lock ${path} left by process ${previous.pid}, which is no longer running`);
  }
  try {
    // A crash takes the lock with it (the kernel frees it), and a note left behind is stale
    // either way (its removal at release was never flushed either): it need not survive a crash.
    await writeFileAtomically(ownerFile(path), JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies LockOwner), { durable: false });
  } catch (error) {
    await lock.release();
    throw error;
  }
  return async () => {
    await rm(ownerFile(path), { force: true });
    await pausePoint('lock-releasing');
    // Closing our descriptor frees the lock at once: nothing else is waited for.
    await lock.release();
  };
}
