// One agent at a time per cache and per live path: a cron `-f` run and a daemon never interleave.
// proper-lockfile keeps the lock fresh while held, so a lock left by a dead process goes stale
// and is taken over.
import { mkdir } from 'node:fs/promises';
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

async function acquire(path: string, options: LockOptions): Promise<ReleaseLock> {
  await mkdir(dirname(path), { recursive: true });
  const attempts = Math.ceil(options.waitMs / 1000);
  try {
    const release = await lockfile.lock(path, {
      lockfilePath: path,
      realpath: false,
      stale: staleLockMs,
      retries: attempts > 0 ? { retries: attempts, factor: 1, minTimeout: 1000, maxTimeout: 1000 } : 0,
      onCompromised: (error) => options.log.error(`lock ${path} was lost: ${error.message}`),
    });
    return async () => {
      await release().catch(() => undefined);
    };
  } catch (error) {
    if (systemErrorCode(error) === 'ELOCKED') {
      throw new DeployError('lock', `another repo-deploy run holds the lock ${path}`, {
        hint: `wait for it to finish; a lock left by a process that died is taken over after ${staleLockMs / 1000} seconds`,
        transient: true,
      });
    }
    throw error;
  }
}
