// One update, step by step (SPEC.md): lock, ask the remote, stage, pre-update hooks, swap,
// post-update hooks, revert on failure, record, prune. The scheduler only decides when this runs.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { requireRemote, type Settings } from './config.js';
import { DeployError, messageOf } from './errors.js';
import { fetcherFor } from './fetchers/registry.js';
import type { CheckResult, DeployedRevision, PendingRevision } from './fetchers/types.js';
import { runHooks, type HookEnvironment, type HookPhase } from './hooks.js';
import { acquireLocks } from './lock.js';
import type { Logger } from './log.js';
import { redact } from './redact.js';
import {
  layoutFor,
  newReleaseId,
  pointLiveAt,
  readLiveRelease,
  releasePath,
  removeLeftovers,
  removeRelease,
  stageRelease,
  type Layout,
} from './releases.js';
import { loadState, saveState, type AgentState, type DeployedRecord } from './state.js';

export interface AgentContext {
  settings: Settings;
  log: Logger;
  /** The environment hooks inherit, read once at start. */
  env: NodeJS.ProcessEnv;
  now: () => Date;
  /** Aborted when the agent must stop. */
  signal: AbortSignal;
  /** How long to wait for a lock another run holds; 0 fails at once. */
  lockWaitMs: number;
}

export type CheckOutcome =
  | { result: 'unchanged'; release: string | undefined; revision: string | undefined }
  | { result: 'updated'; release: string; revision: string }
  | { result: 'blocked'; revision: string; error: DeployError }
  | { result: 'reverted'; revision: string; error: DeployError }
  | { result: 'failed'; error: DeployError };

const shortRevision = (revision: string) => revision.replace(/^sha256:/, '').slice(0, 12) || 'unknown';

/** Runs one check and, when the remote changed, one update. Never throws for a failed update; returns it. */
export async function checkForUpdate(context: AgentContext): Promise<CheckOutcome> {
  const { settings, log } = context;
  const remote = requireRemote(settings);
  const layout = layoutFor(settings.local);
  await mkdir(settings.cache, { recursive: true });
  const releaseLock = await acquireLocks({
    cacheDirectory: settings.cache,
    livePath: layout.live,
    waitMs: context.lockWaitMs,
    log,
  });
  try {
    const state = await loadState(settings.cache);
    const outcome = await lockedCheck(context, remote, layout, state);
    recordCheck(state, outcome, context.now());
    await saveState(settings.cache, state);
    return outcome;
  } finally {
    await releaseLock();
  }
}

async function lockedCheck(context: AgentContext, remote: string, layout: Layout, state: AgentState): Promise<CheckOutcome> {
  const { settings, log } = context;
  const liveRelease = await readLiveRelease(layout);
  await mkdir(layout.releasesDirectory, { recursive: true });
  for (const leftover of await removeLeftovers(layout)) log.info(`removed ${leftover}, left by an interrupted update`);
  reconcileWithDisk(state, liveRelease, log);

  const remoteKey = redact(remote);
  let deployed: DeployedRevision | undefined;
  if (state.current?.revision) {
    deployed = { revision: state.current.revision, remoteState: state.current.remoteState, sameRemote: state.remote === remoteKey };
  }
  const displayRemote = redact(remote);
  log.debug(`checking ${displayRemote}`);
  let checked: CheckResult;
  try {
    const fetcher = await fetcherFor(remote);
    checked = await fetcher.check({
      remote,
      settings,
      workDirectory: join(settings.cache, 'downloads'),
      deployed,
      log,
      signal: context.signal,
    });
  } catch (error) {
    return failed(error, log);
  }
  if (!checked.changed) {
    if (state.current && checked.remoteState) {
      state.current.remoteState = checked.remoteState;
      state.remote = remoteKey;
    }
    log.debug(`up to date at ${shortRevision(state.current?.revision ?? '')}`);
    return { result: 'unchanged', release: state.current?.release, revision: state.current?.revision };
  }
  try {
    return await deploy(context, layout, state, checked, remoteKey);
  } finally {
    await checked.dispose();
  }
}

/** The live link on disk is the truth; the state follows it (a lost cache, a crash, a manual change). */
function reconcileWithDisk(state: AgentState, liveRelease: string | undefined, log: Logger): void {
  if (state.current?.release === liveRelease) return;
  if (liveRelease === undefined) {
    state.current = undefined;
    return;
  }
  const known = state.releases.find((release) => release.id === liveRelease);
  log.info(`live release is ${liveRelease}${known ? '' : ' (revision unknown: the state was lost; the next update redeploys)'}`);
  state.current = { release: liveRelease, revision: known?.revision ?? '', remoteState: {} };
}

async function deploy(
  context: AgentContext,
  layout: Layout,
  state: AgentState,
  pending: PendingRevision,
  remoteKey: string,
): Promise<CheckOutcome> {
  const { settings, log } = context;
  const { revision } = pending;
  const previous = state.current;
  log.info(`new revision ${shortRevision(revision)}: ${pending.description}`);

  const id = newReleaseId(revision, context.now(), new Set(state.releases.map((release) => release.id)));
  try {
    await stageRelease(layout, id, (directory) => pending.stage(directory));
  } catch (error) {
    return failed(error, log);
  }
  const createdAt = context.now().toISOString();
  log.info(`staged release ${id}`);

  const newPath = releasePath(layout, id);
  const previousPath = previous ? releasePath(layout, previous.release) : '';
  const forward: HookEnvironment = {
    currentConfig: newPath,
    previousConfig: previousPath,
    revision,
    previousRevision: previous?.revision ?? '',
  };

  try {
    await runPhase(context, settings.preHooks, 'pre-update', forward);
  } catch (error) {
    await removeRelease(layout, id);
    const blocked = asDeployError(error);
    recordFailure(state, revision, blocked, context.now());
    log.error(`update to ${shortRevision(revision)} blocked: ${blocked.message}; the live release is unchanged and the next check tries again`);
    return { result: 'blocked', revision, error: blocked };
  }

  state.inProgress = {
    release: id,
    revision,
    previousRelease: previous?.release,
    previousRevision: previous?.revision ?? '',
    startedAt: createdAt,
  };
  await saveState(settings.cache, state);
  await pointLiveAt(layout, id);
  log.info(`live path ${layout.live} now points at release ${id}`);

  try {
    await runPhase(context, settings.postHooks, 'post-update', forward);
  } catch (error) {
    const failure = asDeployError(error);
    await revert(context, layout, previous, id, revision);
    state.inProgress = undefined;
    await removeRelease(layout, id);
    recordFailure(state, revision, failure, context.now());
    log.error(`update to ${shortRevision(revision)} reverted: ${failure.message}; the next check tries again`);
    return { result: 'reverted', revision, error: failure };
  }

  const deployedAt = context.now().toISOString();
  for (const release of state.releases) {
    if (release.status === 'live') release.status = 'previous';
    else if (release.status === 'previous') release.status = 'retired';
  }
  state.releases.push({ id, revision, createdAt, deployedAt, status: 'live' });
  state.previous = previous;
  state.current = { release: id, revision, remoteState: pending.remoteState } satisfies DeployedRecord;
  state.remote = remoteKey;
  state.inProgress = undefined;
  state.failures = state.failures.filter((failure) => failure.revision !== revision);
  await pruneReleases(layout, state, settings.keepReleases, log);
  log.info(`deployed revision ${shortRevision(revision)} as release ${id}`);
  return { result: 'updated', release: id, revision };
}

/** Puts the previous release back (or removes the live link on a first deploy) and tells the application. */
async function revert(
  context: AgentContext,
  layout: Layout,
  previous: DeployedRecord | undefined,
  failedRelease: string,
  failedRevision: string,
): Promise<void> {
  const { settings, log } = context;
  await pointLiveAt(layout, previous?.release);
  log.warn(previous ? `reverted the live path to release ${previous.release}` : `removed the live path ${layout.live}: the first deploy failed`);
  try {
    await runPhase(context, settings.postHooks, 'revert', {
      currentConfig: previous ? releasePath(layout, previous.release) : '',
      previousConfig: releasePath(layout, failedRelease),
      revision: previous?.revision ?? '',
      previousRevision: failedRevision,
    });
  } catch (error) {
    log.error(`a post-update hook failed again while reverting: ${messageOf(error)}; check the application by hand`);
  }
}

function runPhase(context: AgentContext, directory: string, phase: HookPhase, hookEnvironment: HookEnvironment): Promise<void> {
  return runHooks({
    directory,
    phase,
    hookEnvironment,
    baseEnv: context.env,
    timeoutMs: context.settings.hookTimeoutMs,
    log: context.log,
    signal: context.signal,
    failureKind: phase === 'pre-update' ? 'pre-hook' : 'post-hook',
  });
}

/** Keeps the newest `keep` releases this agent made; never the live one or the one before it. */
async function pruneReleases(layout: Layout, state: AgentState, keep: number, log: Logger): Promise<void> {
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

function asDeployError(error: unknown): DeployError {
  return error instanceof DeployError ? error : new DeployError('internal', messageOf(error), { cause: error });
}

function failed(error: unknown, log: Logger): CheckOutcome {
  const failure = asDeployError(error);
  if (failure.kind === 'usage' || failure.kind === 'lock' || failure.kind === 'internal') throw failure;
  log.error(failure.message);
  return { result: 'failed', error: failure };
}

function recordFailure(state: AgentState, revision: string, error: DeployError, now: Date): void {
  const existing = state.failures.find((failure) => failure.revision === revision);
  if (existing) {
    existing.count++;
    existing.lastAt = now.toISOString();
    existing.lastError = error.message;
  } else {
    state.failures.push({ revision, count: 1, lastAt: now.toISOString(), lastError: error.message });
  }
}

function recordCheck(state: AgentState, outcome: CheckOutcome, now: Date): void {
  const at = now.toISOString();
  const revision = 'revision' in outcome ? outcome.revision : undefined;
  state.lastCheck = { at, result: outcome.result, revision };
  if (outcome.result === 'unchanged' || outcome.result === 'updated') {
    state.lastSuccessAt = at;
    state.consecutiveFailedChecks = 0;
  } else {
    state.lastError = { at, message: outcome.error.message };
    state.consecutiveFailedChecks++;
  }
}
