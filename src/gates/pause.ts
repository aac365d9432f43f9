// An operator's pause (repo-deploy pause / resume), kept in its own file in the cache so that it
// survives restarts, applies to -f runs from cron, and can be set while a check holds the lock
// (an update already under way finishes, or reverts, first). While it exists, checks go on and
// record what the remote has, but nothing is deployed. A pause file that cannot be read counts
// as a pause: when in doubt, the agent does not deploy.
import { readFile, rm } from 'node:fs/promises';
import { writeFileAtomically } from '../base/atomic-file.js';
import type { CacheLayout } from '../core/cache-layout.js';
import { systemErrorCode } from '../base/errors.js';
import { ensureOwnDirectory } from '../base/own-directory.js';

export interface Pause {
  since: string;
  reason?: string;
  /** Who paused: user@host. */
  by?: string;
}

export async function readPause(cache: CacheLayout): Promise<Pause | undefined> {
  let text: string;
  try {
    text = await readFile(cache.pauseFile, 'utf8');
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    return { since: 'unknown', reason: `the pause file ${cache.pauseFile} cannot be read (${systemErrorCode(error) ?? 'error'})` };
  }
  try {
    const parsed = JSON.parse(text) as Partial<Pause>;
    return { since: String(parsed.since ?? 'unknown'), reason: parsed.reason, by: parsed.by };
  } catch {
    return { since: 'unknown', reason: `the pause file ${cache.pauseFile} is damaged; "repo-deploy resume" removes it` };
  }
}

export async function writePause(cache: CacheLayout, pause: Pause): Promise<void> {
  await ensureOwnDirectory(cache.root);
  await writeFileAtomically(cache.pauseFile, JSON.stringify(pause, null, 2) + '\n');
}

/** Removes the pause; returns the one that was in force, if any. */
export async function clearPause(cache: CacheLayout): Promise<Pause | undefined> {
  const pause = await readPause(cache);
  await rm(cache.pauseFile, { force: true });
  return pause;
}

export function describePause(pause: Pause): string {
  return `paused since ${pause.since}${pause.by ? ` by ${pause.by}` : ''}${pause.reason ? `: ${pause.reason}` : ''}`;
}
