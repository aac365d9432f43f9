// One agent at a time per cache and per live path: a cron `-f` run and a daemon never interleave.
//
// The lock is a kernel object that dies with its process: a listening Unix socket in Linux's
// abstract namespace, named after the lock's path. Binding the name is atomic (exactly one
// process gets it; the others get EADDRINUSE), and the kernel frees it the instant its holder
// exits, kill -9 included. So there is no stale lock to take over, no takeover race, and no
// instant between "taken" and "owner recorded" at which a crash leaves a lock nobody can take.
// (A lock file plus a takeover of a dead holder's lock cannot be made race-free: two processes
// that both saw the dead holder can each remove what the other just created.)
//
// Beside it, `<lock>.owner` tells an operator who holds it. It is information only, written
// atomically after the lock is taken; a stale one is harmless and overwritten by the next holder.
// Abstract sockets belong to a network namespace: agents sharing a cache must share one (a cron
// job and a systemd service on the same host do; see docs/on-disk.md).
import { createHash } from 'node:crypto';
import { mkdir, realpath, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomically } from './atomic-file.js';
import { cacheLayoutFor } from './cache-layout.js';
import { DeployError, systemErrorCode } from './errors.js';
import type { Logger } from './log.js';
import { ensureOwnDirectory } from './own-directory.js';
import { processStartTime } from './process-identity.js';
import { pausePoint } from './test-pause.js';

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

/**
 * Who holds the agent's lock now, as far as its owner note and the process table tell, without
 * touching the lock (a probe could make a cron -f run starting at that instant fail).
 */
export async function currentLockHolder(cacheDirectory: string): Promise<LockOwner | undefined> {
  const owner = await readOwner(cacheLayoutFor(cacheDirectory).lockFile);
  if (!owner || owner.host !== hostname() || (await processStartTime(owner.pid)) === undefined) return undefined;
  return owner;
}

/** The abstract socket name of a lock: the same for every path that reaches the same directory. */
async function kernelLockName(path: string): Promise<string> {
  const directory = await realpath(dirname(path));
  const digest = createHash('sha256').update(join(directory, basename(path))).digest('hex');
  return `\0repo-deploy-lock-${digest}`;
}

function bind(name: string): Promise<Server | undefined> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', (error) => (systemErrorCode(error) === 'EADDRINUSE' ? resolvePromise(undefined) : reject(error)));
    server.listen(name, () => {
      // The socket must never keep the agent alive on its own.
      server.unref();
      resolvePromise(server);
    });
  });
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(ownerFile(path), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

async function acquire(path: string, options: LockOptions): Promise<ReleaseLock> {
  const name = await kernelLockName(path);
  const deadline = Date.now() + options.waitMs;
  let server = await bind(name);
  while (!server && Date.now() < deadline) {
    await sleep(retryEveryMs);
    server = await bind(name);
  }
  if (!server) {
    const owner = await readOwner(path);
    const holder = owner && owner.pid !== process.pid ? ` (process ${owner.pid} on ${owner.host} has held it since ${owner.since})` : '';
    throw new DeployError('lock', `another repo-deploy run holds the lock ${path}`, {
      hint: `wait for it to finish${holder}; a lock dies with the process that held it`,
    });
  }
  const held = server;
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
    held.close();
    throw error;
  }
  return async () => {
    await rm(ownerFile(path), { force: true });
    await pausePoint('lock-releasing');
    await new Promise((resolveClose) => held.close(resolveClose));
  };
}
