// One agent at a time per cache and per live path: a cron `-f` run and a daemon never interleave.
// proper-lockfile keeps the lock fresh while held, so a lock left by a dead process goes stale
// and is taken over. To take it over at once after a crash (not 10 s later), the holder's pid
// and host are written beside the lock; a holder that provably died on this host has its lock
// aged, and proper-lockfile's own stale-lock takeover (race-safe) does the rest.
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { DeployError, systemErrorCode } from './errors.js';
import type { Logger } from './log.js';

export const staleLockMs = 10_000;

export interface LockOptions {
  cacheDirectory: string;
  livePath: string;
  /** How long to wait for a held lock; 0 fails at once. */
  waitMs: number;
  log: Logger;
}

export type ReleaseLock = () => Promise<void>;

export function lockPaths(cacheDirectory: string, livePath: string): string[] {
  return [join(cacheDirectory, 'agent.lock'), join(dirname(livePath), `.${basename(livePath)}.lock`)];
}

export async function acquireLocks(options: LockOptions): Promise<ReleaseLock> {
  const releases: ReleaseLock[] = [];
  try {
    for (const path of lockPaths(options.cacheDirectory, options.livePath)) {
      releases.push(await acquire(path, options));
    }
  } catch (error) {
    for (const release of releases.reverse()) await release();
    throw error;
  }
  return async () => {
    for (const release of releases.reverse()) await release();
  };
}

const ownerFile = (path: string) => `${path}.owner`;

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return systemErrorCode(error) === 'EPERM';
  }
}

/** Ages the lock of a holder that died on this host, so it counts as stale. */
async function ageLockOfDeadHolder(path: string, log: Logger): Promise<void> {
  try {
    const owner = JSON.parse(await readFile(ownerFile(path), 'utf8')) as { pid: number; host: string };
    if (owner.host !== hostname() || owner.pid === process.pid || processIsAlive(owner.pid)) return;
    await utimes(path, new Date(0), new Date(0));
    log.info(`taking over the lock ${path} left by process ${owner.pid}, which is no longer running`);
  } catch {
    // No owner record (or no lock any more): staleness by time decides.
  }
}

async function acquire(path: string, options: LockOptions): Promise<ReleaseLock> {
  await mkdir(dirname(path), { recursive: true });
  const attempts = Math.ceil(options.waitMs / 1000);
  const lockOptions = {
    lockfilePath: path,
    realpath: false,
    stale: staleLockMs,
    onCompromised: (error: Error) => options.log.error(`lock ${path} was lost: ${error.message}`),
  };
  try {
    let release;
    try {
      release = await lockfile.lock(path, { ...lockOptions, retries: 0 });
    } catch (error) {
      if (systemErrorCode(error) !== 'ELOCKED') throw error;
      await ageLockOfDeadHolder(path, options.log);
      release = await lockfile.lock(path, {
        ...lockOptions,
        retries: attempts > 0 ? { retries: attempts, factor: 1, minTimeout: 1000, maxTimeout: 1000 } : 0,
      });
    }
    await writeFile(ownerFile(path), JSON.stringify({ pid: process.pid, host: hostname() }));
    return async () => {
      await rm(ownerFile(path), { force: true });
      await release().catch(() => undefined);
    };
  } catch (error) {
    if (systemErrorCode(error) === 'ELOCKED') {
      throw new DeployError('lock', `another repo-deploy run holds the lock ${path}`, {
        hint: `wait for it to finish; a lock left by a process that died is taken over`,
        transient: true,
      });
    }
    throw error;
  }
}
