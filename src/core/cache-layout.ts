// The cache directory's layout, in one place, as releases.ts owns the live side: the state file,
// the agent's lock, the pause file, the fleet instance id, the OCI token file, the downloads directory (emptied at each check), one bare-ish mirror per git
// repository, and the GnuPG home for gpg-keyring. Nothing else of the agent names these paths.
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ensureOwnDirectory } from '../base/own-directory.js';

export interface CacheLayout {
  root: string;
  stateFile: string;
  lockFile: string;
  /** Present while an operator has paused deploys (repo-deploy pause); written without the lock. */
  pauseFile: string;
  /** Archives being downloaded and detached signatures; nothing here outlives a check. */
  downloads: string;
  /** Interrupted downloads kept to be resumed, one per remote (src/remotes/partial-download.ts). */
  partialDownloads: string;
  /** The last archive downloaded from each zip remote, which the next delta reuses (src/remotes/zip-delta/delta-base.ts). */
  deltaBases: string;
  /** One mirror per repository URL (credentials removed), named by its hash. */
  gitMirrors: string;
  gnupgHome: string;
  /** This agent's random identity in a fleet, so two servers under one host name are told apart. */
  fleetInstanceFile: string;
  /** Notifications not yet delivered, one file each (src/notify/outbox.ts). */
  outbox: string;
  /** The deploy history: hash-chained JSON Lines, its head and its lock (src/history/chain-file.ts). */
  history: string;
  /** OCI registries' Bearer tokens, kept across runs of -f until they expire (src/remotes/oci/token-store.ts). */
  ociTokensFile: string;
}

export function cacheLayoutFor(cacheDirectory: string): CacheLayout {
  return {
    root: cacheDirectory,
    stateFile: join(cacheDirectory, 'state.json'),
    lockFile: join(cacheDirectory, 'agent.lock'),
    pauseFile: join(cacheDirectory, 'paused.json'),
    downloads: join(cacheDirectory, 'downloads'),
    partialDownloads: join(cacheDirectory, 'partial'),
    deltaBases: join(cacheDirectory, 'delta-base'),
    gitMirrors: join(cacheDirectory, 'git'),
    gnupgHome: join(cacheDirectory, 'gnupg'),
    fleetInstanceFile: join(cacheDirectory, 'fleet-instance'),
    ociTokensFile: join(cacheDirectory, 'oci-tokens.json'),
    history: join(cacheDirectory, 'history'),
    outbox: join(cacheDirectory, 'outbox'),
  };
}

/** Where `repo-deploy plan` stages a revision apart (under the lock; removed after, or by the next locked run if killed). */
export const planStagingPrefix = 'plan-';

/** The mirror of one repository: the same URL always maps to the same directory. */
export function gitMirrorPath(cache: CacheLayout, repository: string): string {
  return join(cache.gitMirrors, createHash('sha256').update(repository).digest('hex').slice(0, 16));
}

/** A new file name in the downloads directory, which is created (and refused if it is a symlink). */
export async function newDownloadFile(cache: CacheLayout, kind: 'download' | 'signature'): Promise<string> {
  await ensureOwnDirectory(cache.downloads);
  const suffix = kind === 'download' ? '.zip.part' : '.sig';
  return join(cache.downloads, `${kind}-${randomBytes(6).toString('hex')}${suffix}`);
}
