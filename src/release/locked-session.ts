// The locked session every operation on one app's releases runs in, the check and the
// operator's commands alike: the agent's two locks, its state loaded and saved at the end (a
// failed save says what is live), and the preparation each starts with: an interrupted switch
// finished or undone, leftovers of a killed run removed, the state reconciled with the live link
// on disk, releases a lost state forgot listed again. Pruning ends an update or a rollback.
import { readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { removeStaleTemporaryFiles } from '../base/atomic-file.js';
import type { AgentContext } from '../core/agent-context.js';
import { cacheLayoutFor, planStagingPrefix } from '../core/cache-layout.js';
import { DeployError, noSpaceError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import { acquireLocks } from './lock.js';
import { recoverInterruptedSwitch } from './recovery.js';
import { layoutFor, listReleaseDirectories, readLiveRelease, releaseExists, releaseNameTime, releasePath, removeLeftovers, removeRelease, type Layout } from './releases.js';
import { loadState, saveState, type AgentState } from './state.js';
import { asDeployError } from './switch-release.js';
import { removeAbandonedPartials } from '../remotes/partial-download.js';

/** Runs `work` with the agent's locks and state, saving the state afterwards. */
export async function withLockedState<T>(context: AgentContext, work: (state: AgentState, layout: Layout) => Promise<T>, { save = true }: { save?: boolean } = {}): Promise<T> {
  const { settings, log } = context;
  const layout = layoutFor(settings.local);
  const releaseLock = await acquireLocks({ cacheDirectory: settings.cache, livePath: layout.live, waitMs: context.lockWaitMs, log });
  try {
    const state = await loadState(settings.cache);
    let result: T;
    try {
      result = await work(state, layout);
      if (!save) return result;
    } catch (error) {
      if (!save) throw error;
      // The work's own failure is what the run reports; a state that cannot be saved as well is logged.
      const notSaved = await saveStateAtEnd(settings.cache, state, layout);
      if (notSaved) log.error(notSaved.message);
      throw error;
    }
    const notSaved = await saveStateAtEnd(settings.cache, state, layout);
    if (notSaved) throw notSaved;
    return result;
  } finally {
    await releaseLock();
  }
}

/**
 * The save at the end of a locked run; a failure (a full disk) is returned, saying what is live.
 * The journal of a switch this run finished may then still be on disk, and the next start would
 * undo the switch (a first deploy: remove the live path). That file is removed, which needs no
 * space: the live link is then the truth the next start rebuilds the state from.
 */
async function saveStateAtEnd(cacheDirectory: string, state: AgentState, layout: Layout): Promise<DeployError | undefined> {
  try {
    await saveState(cacheDirectory, state);
    return undefined;
  } catch (error) {
    const live = await readLiveRelease(layout).catch(() => undefined);
    const forgot = !state.inProgress && (await forgetJournalThatWouldUndo(cacheDirectory, live));
    const cause = noSpaceError(error, undefined, 'free some space there') ?? asDeployError(error);
    const what = live ? `release ${live} is live` : 'nothing is live';
    const after = forgot ? '; the state was removed so that the next start does not undo the switch this run finished (the next check deploys the remote\'s revision again)' : '';
    return new DeployError(cause.kind, `the state could not be saved (${cause.message}); ${what}${after}`, { cause: error });
  }
}

/** Removes the state file when its journal names the release live now: recovery would revert it. */
async function forgetJournalThatWouldUndo(cacheDirectory: string, live: string | undefined): Promise<boolean> {
  const onDisk = await loadState(cacheDirectory).catch(() => undefined);
  const journal = onDisk?.inProgress;
  if (!journal || live === undefined || journal.release !== live || journal.previousRelease === live) return false;
  await rm(cacheLayoutFor(cacheDirectory).stateFile, { force: true });
  return true;
}

/** What every locked operation starts with: the live link read, leftovers removed, a crash undone. */
export async function prepare(context: AgentContext, layout: Layout, state: AgentState): Promise<string | undefined> {
  const { log, settings } = context;
  let liveRelease = await readLiveRelease(layout);
  await ensureOwnDirectory(layout.releasesDirectory);
  liveRelease = await recoverInterruptedSwitch(context, layout, state, liveRelease);
  for (const leftover of await removeLeftovers(layout)) log.info(`removed ${leftover}, left by an interrupted update`);
  // Where the agent writes files atomically: the cache (state, lock owner, pause), beside the live
  // path (its lock owner) and the releases (manifests).
  for (const directory of [settings.cache, dirname(layout.live), layout.releasesDirectory]) {
    for (const leftover of await removeStaleTemporaryFiles(directory)) log.info(`removed ${leftover}, a temporary file left by a killed run`);
  }
  const downloads = cacheLayoutFor(settings.cache).downloads;
  for (const name of await readdir(downloads).catch(() => [] as string[])) await rm(join(downloads, name), { force: true });
  for (const removed of await removeAbandonedPartials(cacheLayoutFor(settings.cache), context.now())) log.info(`removed ${removed}, a download cut short a week ago or more that no check has resumed since`);
  // A plan killed while it staged a revision apart: nothing else writes these, and the lock is ours.
  for (const name of await readdir(settings.cache).catch(() => [] as string[])) {
    if (!name.startsWith(planStagingPrefix)) continue;
    await rm(join(settings.cache, name), { recursive: true, force: true });
    log.info(`removed ${join(settings.cache, name)}, left by an interrupted plan`);
  }
  if (liveRelease !== undefined && !(await releaseExists(layout, liveRelease))) {
    log.error(`the live path ${layout.live} points at release ${liveRelease}, whose directory ${releasePath(layout, liveRelease)} is missing (removed by hand?); the application has no files. Deploying the remote's revision again`, { release: liveRelease });
    state.releases = state.releases.filter((release) => release.id !== liveRelease);
    state.current = undefined;
    if (state.previous?.release === liveRelease) state.previous = undefined;
    state.brokenLive = liveRelease;
    return undefined;
  }
  reconcileWithDisk(state, liveRelease, log);
  relistLostReleases(state, await listReleaseDirectories(layout), log);
  return liveRelease;
}

/**
 * Releases of the agent's own naming that the state no longer lists (it was lost) are listed
 * again, revision unknown, so that pruning keeps them to keep-releases like any other.
 */
function relistLostReleases(state: AgentState, onDisk: string[], log: Logger): void {
  const listed = new Set(state.releases.map((release) => release.id));
  const lost = onDisk.filter((name) => !listed.has(name) && releaseNameTime(name));
  if (lost.length === 0) return;
  for (const id of lost) state.releases.push({ id, revision: '', createdAt: releaseNameTime(id)!.toISOString() });
  state.releases.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  log.info(`${lost.length} release${lost.length > 1 ? 's' : ''} on disk that the state did not list (it was lost) ${lost.length > 1 ? 'are' : 'is'} listed again, to be pruned like the others: ${lost.join(', ')}`);
}

/** The live link on disk is the truth; the state follows it (a lost cache, a crash, a manual change). */
export function reconcileWithDisk(state: AgentState, liveRelease: string | undefined, log: Logger): void {
  if (state.current?.release === liveRelease) return;
  if (liveRelease === undefined) {
    state.current = undefined;
    return;
  }
  const known = state.releases.find((release) => release.id === liveRelease);
  log.info(`live release is ${liveRelease}${known ? '' : ' (revision unknown: the state was lost; the next update redeploys)'}`);
  state.current = { release: liveRelease, revision: known?.revision ?? '', remoteState: {} };
}

/** Keeps the newest `keep` releases this agent made; never the live one or the one before it. */
export async function pruneReleases(layout: Layout, state: AgentState, keep: number, log: Logger): Promise<void> {
  const protectedIds = new Set([state.current?.release, state.previous?.release].filter(Boolean));
  const excess = state.releases.length - keep;
  if (excess <= 0) return;
  const removable = state.releases.filter((release) => !protectedIds.has(release.id)).slice(0, excess);
  for (const release of removable) {
    await removeRelease(layout, release.id);
    log.debug(`pruned release ${release.id}`);
  }
  const removed = new Set(removable.map((release) => release.id));
  state.releases = state.releases.filter((release) => !removed.has(release.id));
}

