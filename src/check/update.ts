// One update, step by step (SPEC.md): lock, recover an interrupted switch, ask the remote,
// stage, switch (pre-update hooks, swap, post-update hooks, revert on failure), record, prune.
// The scheduler only decides when this runs.
import { join } from 'node:path';
import type { AgentContext, CheckOutcome, CheckReport } from '../core/agent-context.js';
import { requireRemote } from '../settings/config.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { DeployError, fetchError } from '../base/errors.js';
import { forgetFailures, holdBackRefused, recordFailure, releaseHeldBack, shortRevision } from '../release/failures.js';
import { createFetcher } from '../remotes/registry.js';
import type { CheckResult, DeployedRevision, PendingRevision, RemoteState, StagedFiles } from '../core/remote-contract.js';
import type { Logger } from '../base/log.js';
import type { Remote } from '../core/remote.js';
import { listReleaseDirectories, newReleaseId, readLiveRelease, releaseExists, releasePath, removeRelease, stageRelease, type Layout } from '../release/releases.js';
import { recordLiveRelease, saveState, type AgentState, type WaitingRevision } from '../release/state.js';
import { asDeployError, switchRelease, type FleetSlot, type SwitchResult } from '../release/switch-release.js';
import { prepare, pruneReleases, reconcileWithDisk, withLockedState } from '../release/locked-session.js';
import { firstClosedGate, forgetWaiting, localGates, noteWaiting, refreshWaiting, waitingFor, type ClosedGate, type DeployGate } from '../gates/deploy-gates.js';
import type { FleetRollout } from '../fleet/rollout.js';
import { pausePoint } from '../base/test-pause.js';
import { manifestPath, writeManifest, type WrittenManifest } from '../verify/manifest.js';
import { stateBefore, tellCheckOutcome, tellUpdateStarted } from './update-story.js';
import { trustFingerprint, unverifiedRefusal, verificationAskedBy, VerificationError } from '../verify/refusal.js';

/** What is live, as fetchers compare the remote with it; undefined while its revision is unknown. */
export function liveRevision(state: AgentState, remoteKey: string): DeployedRevision | undefined {
  if (!state.current?.revision) return undefined;
  return { revision: state.current.revision, remoteState: state.current.remoteState, sameRemote: state.remote === remoteKey };
}

/** Runs one check and, when the remote changed, one update. A failed update is returned, not thrown. */
export async function checkForUpdate(context: AgentContext): Promise<CheckReport> {
  const remote = requireRemote(context.settings);
  return withLockedState(context, async (state, layout) => {
    const before = stateBefore(state);
    const liveRelease = await prepare(context, layout, state);
    // In a fleet the outcome is told while the fleet is at hand: the rollout's progress is notified once per fleet.
    let told = false;
    const outcome = await checkWithFleet(context, state, async (rollout) => {
      const inFleet = rollout ? { ...context, firstInFleetToTell: (event: string, revision: string) => rollout.firstToTell(event, revision) } : context;
      const result = await lockedCheck(inFleet, remote, layout, state, liveRelease, rollout);
      if (rollout) {
        await tellCheckOutcome(inFleet, before, state, result);
        told = true;
      }
      return result;
    });
    if (state.brokenLive) await repairBrokenLive(context, layout, state, outcome);
    recordCheck(state, outcome, context.now());
    if (!told) await tellCheckOutcome(context, before, state, outcome);
    return { ...outcome, failedChecksInARow: state.consecutiveFailedChecks };
  });
}

/**
 * What the next check would do, by the check's own code path (the remote, the held-back state,
 * pause, deploy window, min-age), stopping where an update would begin. Changes nothing: no
 * recovery, no download kept, no state saved, no fleet slot taken (check-config reports the fleet).
 */
export async function previewCheck(context: AgentContext): Promise<CheckOutcome> {
  const remote = requireRemote(context.settings);
  const quiet = { ...context, preview: true, log: { debug() {}, info() {}, warn() {}, error() {} } };
  return withLockedState(
    context,
    async (state, layout) => {
      const liveRelease = await readLiveRelease(layout);
      reconcileWithDisk(state, liveRelease, quiet.log);
      try {
        return await lockedCheck(quiet, remote, layout, state, liveRelease, undefined);
      } catch (error) {
        return { result: 'failed', error: asDeployError(error) };
      }
    },
    { save: false },
  );
}

/** Runs the check as a member of the fleet when fleet-redis is set; a fleet that cannot be reached fails the check (fail closed). */
async function checkWithFleet(context: AgentContext, state: AgentState, check: (rollout: FleetRollout | undefined) => Promise<CheckOutcome>): Promise<CheckOutcome> {
  if (!context.settings.fleetRedis) return check(undefined);
  let rollout: FleetRollout | undefined;
  try {
    // Loaded only with a fleet: ioredis costs every check a few hundred ms of start-up otherwise.
    const { FleetRollout } = await import('../fleet/rollout.js');
    rollout = await FleetRollout.join(context);
  } catch (error) {
    return failed(error, context);
  }
  if (!rollout) return check(undefined);
  let outcome: CheckOutcome = { result: 'failed', error: new DeployError('internal', 'the check did not end') };
  try {
    outcome = await check(rollout);
    return outcome;
  } catch (error) {
    outcome = failed(error, context);
    return outcome;
  } finally {
    await rollout.finish(outcome, state);
  }
}

async function lockedCheck(context: AgentContext, remote: Remote, layout: Layout, state: AgentState, liveRelease: string | undefined, rollout: FleetRollout | undefined): Promise<CheckOutcome> {
  const { settings, log } = context;
  const remoteKey = remote.display;
  const trust = await trustFingerprint(settings);
  if (state.heldBack?.reason === 'refused' && state.heldBack.trust !== trust) {
    log.info(`the trust settings changed since revision ${shortRevision(state.heldBack.revision)} was refused; checking it again`);
    releaseHeldBack(state);
  }
  const held = state.heldBack && state.remote === remoteKey ? state.heldBack : undefined;
  const cache = cacheLayoutFor(settings.cache);
  const waiting = held ? undefined : waitingFor(state, remoteKey);
  // The gates of this check, in order, built once; the fleet's last.
  const gates: DeployGate[] = [...localGates(context), ...(rollout ? [rollout.gate()] : [])];
  const stillWaiting = waiting && (await firstClosedGate(gates, waiting.revision, new Date(waiting.firstSeenAt), { admitting: false }));
  // A drifted live release is deployed again: the remote is asked as if nothing were live.
  const redeploy = context.redeployRelease !== undefined && context.redeployRelease === liveRelease && !held && !rollout;
  if (redeploy) log.warn(`release ${liveRelease} drifted from its manifest (drift-action = redeploy): deploying the remote's revision again as a new release`, { release: liveRelease });
  const live = redeploy ? undefined : liveRevision(state, remoteKey);
  const plan = rollout ? await rollout.plan(state, remoteKey) : { askRemote: true, known: undefined };
  const candidate = { layout, state, remoteKey, liveRelease, waiting, rollout, gates, fetch: async (against: DeployedRevision | undefined) => (await createFetcher(remote, settings)).check({ settings, cache, deployed: against, live, log, env: context.env, signal: context.signal, progress: context.progress }) };
  // Rolled back by the fleet: what the remote has does not matter until "fleet resume".
  if (plan.known?.pinned) return await admit(context, candidate, plan.known, undefined);
  if (!plan.askRemote) {
    // Another member is the scout: this one asks the remote nothing, and downloads only a
    // revision the fleet rolls out, once it holds a slot for it.
    if (held && held.revision === plan.known?.revision) return heldBackOutcome(state, held.revision, log);
    if (!plan.known) return { result: 'unchanged', release: state.current?.release, revision: state.current?.revision };
    return await admit(context, candidate, plan.known, undefined);
  }
  // With a revision held back, or one that must still wait, or one the fleet rolls out, the
  // remote is asked "still that one?", so it is not downloaded again.
  const remembered = held ?? (stillWaiting ? waiting : undefined) ?? plan.known;
  const deployed: DeployedRevision | undefined = remembered ? { revision: remembered.revision, remoteState: remembered.remoteState, sameRemote: true } : live;
  const checked = await askRemote(context, candidate, deployed, trust);
  if (!('changed' in checked)) return checked;
  if (!checked.changed) {
    if (held) return heldBackOutcome(state, held.revision, log);
    if (waiting && stillWaiting) {
      refreshWaiting(waiting, checked.remoteState);
      noteWaiting(context, state, waiting, stillWaiting);
      return waitingOutcome(waiting, stillWaiting);
    }
    if (plan.known && remembered === plan.known) return await admit(context, candidate, { ...plan.known, remoteState: checked.remoteState ?? plan.known.remoteState }, undefined);
    return upToDate(context, state, remoteKey, checked.remoteState);
  }
  try {
    if (checked.revision === state.current?.revision && !redeploy) {
      // The remote is back at what is live (after a rollback, or a held-back revision withdrawn).
      releaseHeldBack(state);
      state.waiting = undefined;
      state.current.remoteState = checked.remoteState;
      state.remote = remoteKey;
      log.info(`the remote is at the live revision ${shortRevision(checked.revision)} again`);
      return { result: 'unchanged', release: state.current.release, revision: state.current.revision };
    }
    if (held?.revision === checked.revision) {
      held.remoteState = checked.remoteState;
      return heldBackOutcome(state, held.revision, log);
    }
    if (rollout && checked.revision !== plan.known?.revision && !(await rollout.discovered(checked.revision, remoteKey, checked.remoteState)).published) {
      return { result: 'unchanged', release: state.current?.release, revision: state.current?.revision };
    }
    return await admit(context, candidate, checked, checked);
  } finally {
    await checked.dispose();
  }
}

/** Asks the remote, unless it asked (Retry-After) for quiet; a failure is a check outcome. */
async function askRemote(context: AgentContext, candidate: Candidate, deployed: DeployedRevision | undefined, trust: string): Promise<CheckResult | CheckOutcome> {
  const { state, remoteKey } = candidate;
  const { log } = context;
  log.debug(`checking ${remoteKey}`);
  const quietUntil = state.remoteQuietUntil ? Date.parse(state.remoteQuietUntil) : 0;
  if (quietUntil > context.now().getTime()) {
    return failed(fetchError(`${remoteKey} asked (Retry-After) not to be asked again before ${state.remoteQuietUntil}; no request was sent`, { hint: 'the live release is unchanged' }), context);
  }
  state.remoteQuietUntil = undefined;
  try {
    return await candidate.fetch(deployed);
  } catch (error) {
    if (error instanceof VerificationError) return refused(state, error, trust, context.now(), log);
    if (error instanceof DeployError && error.retryAfterMs !== undefined) {
      // Honoured, but never for longer than max-backoff: a server must not silence the agent for days.
      state.remoteQuietUntil = new Date(context.now().getTime() + Math.min(error.retryAfterMs, context.settings.maxBackoffMs)).toISOString();
    }
    return failed(error, context);
  }
}

/** The remote still has what is live: a revision that waited is gone, fresh validators are kept. */
function upToDate(context: AgentContext, state: AgentState, remoteKey: string, remoteState: RemoteState | undefined): CheckOutcome {
  if (waitingFor(state, remoteKey)) forgetWaiting(context, state);
  if (state.current && remoteState) {
    state.current.remoteState = remoteState;
    state.remote = remoteKey;
  }
  context.log.debug(`up to date at ${shortRevision(state.current?.revision ?? '')}`);
  return { result: 'unchanged', release: state.current?.release, revision: state.current?.revision };
}

interface Candidate {
  layout: Layout;
  state: AgentState;
  remoteKey: string;
  liveRelease: string | undefined;
  waiting: WaitingRevision | undefined;
  rollout: FleetRollout | undefined;
  gates: readonly DeployGate[];
  /** Asks the remote, comparing with `against`. */
  fetch(against: DeployedRevision | undefined): Promise<CheckResult>;
}

/**
 * A new revision passes the gates (pause, deploy window, min-age, then the fleet) or waits. Once
 * through, it is deployed: `pending` when it was downloaded already, else it is downloaded now
 * (a fleet member that learnt of it from the fleet).
 */
async function admit(context: AgentContext, candidate: Candidate, revision: { revision: string; remoteState: RemoteState }, pending: PendingRevision | undefined): Promise<CheckOutcome> {
  const { state, waiting, rollout } = candidate;
  const firstSeenAt = waiting?.revision === revision.revision ? waiting.firstSeenAt : context.now().toISOString();
  // A plan shows what would change whether or not a gate holds the revision back.
  if (context.preview && pending && context.previewStage) await context.previewStage(pending);
  // Asked again: a pause set during the download applies to this update; the fleet's slot is taken last.
  const gate = await firstClosedGate(candidate.gates, revision.revision, new Date(firstSeenAt), { admitting: true });
  if (gate) {
    const next = { revision: revision.revision, remote: candidate.remoteKey, remoteState: revision.remoteState, firstSeenAt };
    noteWaiting(context, state, next, gate);
    return waitingOutcome(next, gate);
  }
  if (context.preview) return { result: 'would-update', revision: revision.revision, description: pending?.description ?? 'rolled out by the fleet' };
  state.waiting = undefined;
  if (rollout && 'pinned' in revision && revision.pinned) return rollBackWithFleet(context, candidate, rollout, revision.revision);
  const run = (download: PendingRevision) => (fleetSlot?: FleetSlot) => deploy(context, candidate.layout, state, download, candidate.remoteKey, candidate.liveRelease, fleetSlot);
  if (pending) return rollout ? rollout.deploy(revision.revision, run(pending)) : run(pending)();
  // A revision the fleet rolls out, not yet downloaded here: fetched now, against what is live.
  let fetched: CheckResult;
  try {
    fetched = await candidate.fetch(liveRevision(state, candidate.remoteKey));
  } catch (error) {
    await rollout?.giveBack(revision.revision).catch(() => undefined); // else it frees itself within fleet-lease
    throw error;
  }
  try {
    if (!fetched.changed || fetched.revision !== revision.revision) {
      await rollout?.giveBack(revision.revision);
      throw fetchError(`the remote no longer has revision ${shortRevision(revision.revision)}, which the fleet rolls out`, { hint: 'the live release is unchanged; the fleet\'s scout looks at what the remote has now' });
    }
    return await (rollout ? rollout.deploy(revision.revision, run(fetched)) : run(fetched)());
  } finally {
    if (fetched.changed) await fetched.dispose();
  }
}

/**
 * \`fleet rollback\`: this member goes back to the fleet's earlier revision from a release of its
 * own, in a fleet slot, with the hooks in phase \`rollback\` and the health gate, as an update
 * would. A member without such a release on disk waits (the remote no longer has it).
 */
async function rollBackWithFleet(context: AgentContext, candidate: Candidate, rollout: FleetRollout, revision: string): Promise<CheckOutcome> {
  const { layout, state, liveRelease } = candidate;
  const onDisk = new Set(await listReleaseDirectories(layout));
  const target = [...state.releases].reverse().find((release) => release.revision === revision && onDisk.has(release.id));
  const unverified = target && unverifiedRefusal(context.settings, target);
  if (unverified) {
    await rollout.giveBack(revision).catch(() => undefined);
    const gate = { gate: 'fleet' as const, reason: `is where the fleet is rolled back to, but ${unverified}; it stays on ${shortRevision(state.current?.revision ?? '')} until the fleet moves on` };
    context.log.error(`revision ${shortRevision(revision)} ${gate.reason}`, { revision });
    return waitingOutcome({ revision }, gate);
  }
  if (!target) {
    await rollout.giveBack(revision).catch(() => undefined);
    const gate = { gate: 'fleet' as const, reason: `is where the fleet is rolled back to ("repo-deploy fleet rollback"), but this server has no release of it on disk; it stays on ${shortRevision(state.current?.revision ?? '')} until the fleet moves on` };
    context.log.warn(`revision ${shortRevision(revision)} ${gate.reason}`, { revision });
    return waitingOutcome({ revision }, gate);
  }
  const previous = state.current;
  return rollout.deploy(revision, async (fleetSlot) => {
    const result = await switchRelease(context, layout, state, {
      kind: 'rollback',
      release: target.id,
      revision,
      previousRelease: liveRelease,
      previousRevision: previous?.revision ?? '',
      removeOnFailure: false,
      fleetSlot,
    });
    if (!result.switched) {
      const error = new DeployError(result.stage === 'pre-update' ? 'pre-hook' : 'post-hook', `the fleet's rollback to ${shortRevision(revision)} ${result.stage === 'pre-update' ? 'was blocked' : 'was reverted'}: ${result.error.message}`);
      if (result.stopped) return { result: 'stopped', revision }; // not a failure; the next start asks the fleet again
      if (result.abandoned) return { result: 'failed', error };
      context.log.error(error.message, { revision });
      return result.stage === 'pre-update' ? { result: 'blocked', revision, error } : { result: 'reverted', revision, error };
    }
    recordLiveRelease(state, { release: target.id, revision, remoteState: {} }, 'rolled-back');
    context.log.info(`rolled back with the fleet to revision ${shortRevision(revision)}, release ${target.id}${liveRelease ? ` (was release ${liveRelease})` : ''}`, { release: target.id, revision });
    return { result: 'updated', release: target.id, revision };
  });
}

/**
 * After a check that found the live link pointing at a missing release: a deployed revision
 * replaced it; otherwise (the remote unreachable, say) the newest release still on disk is made
 * live, with the hooks in phase "rollback", so the application has files again.
 */
async function repairBrokenLive(context: AgentContext, layout: Layout, state: AgentState, outcome: CheckOutcome): Promise<void> {
  const { log } = context;
  if (outcome.result === 'updated') {
    state.brokenLive = undefined;
    return;
  }
  if (outcome.result === 'stopped' || context.signal.aborted) return; // the next start repairs it
  const fallback = [...state.releases].reverse().find((release) => release.id !== state.brokenLive && !unverifiedRefusal(context.settings, release));
  if (!fallback || !(await releaseExists(layout, fallback.id))) {
    log.error(`nothing is live at ${layout.live}: its release is missing and no other ${verificationAskedBy(context.settings).length > 0 ? 'verified ' : ''}release is on disk; the next check tries to deploy again`);
    return;
  }
  const result = await switchRelease(context, layout, state, {
    kind: 'rollback',
    release: fallback.id,
    revision: fallback.revision,
    previousRelease: undefined,
    previousRevision: '',
    removeOnFailure: false,
  });
  if (!result.switched) {
    log.error(`could not make release ${fallback.id} live in place of the missing one: ${result.error.message}`);
    return;
  }
  recordLiveRelease(state, { release: fallback.id, revision: fallback.revision, remoteState: {} }, 'missing');
  state.brokenLive = undefined;
  log.warn(`the remote could not be deployed, so release ${fallback.id} (revision ${shortRevision(fallback.revision)}), the newest one on disk, is live in place of the missing one`, { release: fallback.id });
}

/** Content the operator's keys do not vouch for: remembered (unless the refusal says a signature may still come), so it is not downloaded again. */
function refused(state: AgentState, error: VerificationError, trust: string, now: Date, log: Logger): CheckOutcome {
  if (error.remember) holdBackRefused(state, error, trust, now);
  log.error(error.message, { revision: error.revision });
  return { result: 'refused', revision: error.revision, error };
}

function waitingOutcome(waiting: { revision: string }, gate: ClosedGate): CheckOutcome {
  return { result: 'waiting', revision: waiting.revision, gate: gate.gate, reason: gate.reason, eligibleAt: gate.eligibleAt?.toISOString() };
}

function heldBackOutcome(state: AgentState, revision: string, log: Logger): CheckOutcome {
  const held = state.heldBack;
  if (held?.reason === 'refused') {
    const message = held.lastError ?? `revision ${shortRevision(revision)} was refused`;
    log.error(`${message} (remembered: not downloaded again)`, { revision });
    return { result: 'refused', revision, error: new VerificationError(message, revision, held.remoteState) };
  }
  if (held?.reason === 'rolled-back') {
    log.info(`revision ${shortRevision(revision)} on the remote is held back since the rollback to release ${state.current?.release ?? 'unknown'}; run "repo-deploy retry" to deploy it`, { revision });
    return { result: 'unchanged', release: state.current?.release, revision: state.current?.revision, heldBackSinceRollback: revision };
  }
  log.warn(`revision ${shortRevision(revision)} is still held back after repeated failures (last: ${held?.lastError ?? 'unknown'}); run "repo-deploy retry" to try it again`, { revision });
  return { result: 'held-back', revision };
}

async function deploy(
  context: AgentContext,
  layout: Layout,
  state: AgentState,
  pending: PendingRevision,
  remoteKey: string,
  liveRelease: string | undefined,
  fleetSlot?: FleetSlot,
): Promise<CheckOutcome> {
  const { log } = context;
  const { revision } = pending;
  const previous = state.current;
  log.info(`new revision ${shortRevision(revision)}: ${pending.description}`, { revision });
  await pausePoint('downloaded');

  const staged = await stageNewRelease(context, layout, state, pending, liveRelease);
  if ('error' in staged) return failed(staged.error, context, revision);
  const { id, createdAt } = staged;
  const manifests = { from: liveRelease && manifestPath(layout.releasesDirectory, liveRelease), to: staged.manifest };
  await tellUpdateStarted(context, state, { release: id, previousRelease: liveRelease, revisionFrom: previous?.revision, revisionTo: revision, remote: remoteKey, description: pending.description, remoteState: pending.remoteState, commit: pending.commit, manifests });
  let result: SwitchResult;
  try {
    result = await switchRelease(context, layout, state, {
      kind: 'update',
      release: id,
      revision,
      previousRelease: liveRelease,
      previousRevision: previous?.revision ?? '',
      removeOnFailure: true,
      fleetSlot,
    });
  } catch (error) {
    // Thrown only before the swap (a journal write on a full disk): the release made for it goes.
    state.inProgress = undefined;
    await removeRelease(layout, id);
    return failed(error, context, revision);
  }
  if (!result.switched) {
    await removeRelease(layout, id);
    return reportFailedSwitch(context, state, pending, result, fleetSlot !== undefined);
  }

  state.releases.push({ id, revision, createdAt, deployedAt: context.now().toISOString(), verified: verificationAskedBy(context.settings).length > 0 });
  recordLiveRelease(state, { release: id, revision, remoteState: pending.remoteState }, 'previous');
  state.remote = remoteKey;
  forgetFailures(state, revision);
  releaseHeldBack(state);
  // Committed on disk before anything else is done or said: until the state without the switch's
  // journal is saved, a kill -9 makes the next start revert the release, and the log (and the
  // history after it) would already have said "deployed". The run's own save at its end comes
  // after the history's appends, too long a window for that. A save that fails here (a full
  // disk) is left to that save at the end, which says so and removes the journal.
  await saveState(context.settings.cache, state).catch(() => undefined);
  await pruneReleases(layout, state, context.settings.keepReleases, log);
  const previousRevision = previous?.revision ? `, revision ${shortRevision(previous.revision)}` : '';
  const replaced = liveRelease ? ` (was release ${liveRelease}${previousRevision}, kept for a rollback)` : '';
  log.info(`deployed revision ${shortRevision(revision)} as release ${id}${replaced}`, { release: id, revision });
  await pausePoint('deployed');
  return { result: 'updated', release: id, revision };
}

/** Writes the pending revision into a new release with its manifest; an error leaves nothing behind. */
async function stageNewRelease(
  context: AgentContext,
  layout: Layout,
  state: AgentState,
  pending: PendingRevision,
  liveRelease: string | undefined,
): Promise<{ id: string; createdAt: string; manifest: WrittenManifest } | { error: unknown }> {
  const { revision } = pending;
  const id = await newReleaseId(layout, revision, context.now(), state.releases.map((release) => release.id));
  // Journaled before the release gets its name: a crash after the rename and before the switch
  // journal would otherwise leave a whole release that nothing lists or prunes.
  state.inProgress = {
    kind: 'update',
    step: 'stage',
    release: id,
    revision,
    previousRelease: liveRelease,
    previousRevision: state.current?.revision ?? '',
    removeOnFailure: true,
    startedAt: context.now().toISOString(),
  };
  // This run removes only what it made: the release once it has its name (stageRelease cleans
  // up its own staging directory), never a directory of that name that was there before.
  let named = false;
  const staged: { files?: StagedFiles; manifest?: WrittenManifest } = {};
  try {
    await saveState(context.settings.cache, state);
    await stageRelease(layout, id, async (directory) => {
      staged.files = (await pending.stage(directory)) ?? undefined;
    });
    named = true;
    await pausePoint('staged');
    // The files the fetcher hashed as it wrote them are not read back.
    staged.manifest = await writeManifest(releasePath(layout, id), manifestPath(layout.releasesDirectory, id), staged.files);
  } catch (error) {
    if (named) await removeRelease(layout, id);
    state.inProgress = undefined;
    return { error };
  }
  context.log.info(`staged release ${id}`, { release: id, revision });
  return { id, createdAt: context.now().toISOString(), manifest: staged.manifest! };
}

/** A switch that did not happen: stopped (not a failure), blocked by pre-update, or reverted. */
/** `inFleet`: the update ran in a fleet slot, where a server never tries a revision that failed on it again. */
function reportFailedSwitch(context: AgentContext, state: AgentState, pending: PendingRevision, result: Extract<SwitchResult, { switched: false }>, inFleet: boolean): CheckOutcome {
  const { log } = context;
  const { revision } = pending;
  if (result.revert?.failure) {
    // Going back failed too (logged with the original failure): the failed release may be live.
    log.error(`update to ${shortRevision(revision)} failed and could not be reverted: ${result.revert.failure.message}`, { revision, release: result.revert.live });
    return { result: 'failed', error: result.revert.failure };
  }
  if (result.abandoned) {
    log.warn(`update to ${shortRevision(revision)}: ${result.error.message}; not counted as a failure of the revision`, { revision });
    return { result: 'failed', error: result.error };
  }
  if (result.stopped) {
    const how = result.stage === 'post-update' ? ` (reverted: ${result.error.message})` : result.error.message === 'the agent is stopping' ? '' : ` (${result.error.message})`;
    log.warn(`update to ${shortRevision(revision)} abandoned because the agent is stopping${how}; it is not counted as a failure and the next start tries again`, { revision });
    return { result: 'stopped', revision };
  }
  const heldBack = recordFailure(state, revision, result.error.message, context.now(), context.settings.maxAttempts, pending.remoteState, log);
  const next = heldBack ? 'it is now held back (see above)' : inFleet ? 'in a fleet this server does not try it again, and the fleet is told' : 'the next check tries again';
  if (result.stage === 'pre-update') {
    log.error(`update to ${shortRevision(revision)} blocked: ${result.error.message}; the live release is unchanged and ${next}`, { revision });
    return { result: 'blocked', revision, error: result.error };
  }
  const live = result.revert?.live ? `release ${result.revert.live} is live again` : 'nothing is live (a first deploy)';
  log.error(`update to ${shortRevision(revision)} reverted: ${result.error.message}; ${live}; ${next}`, { revision, release: result.revert?.live });
  return { result: 'reverted', revision, error: result.error };
}

function failed(error: unknown, context: Pick<AgentContext, 'log' | 'signal'>, revision?: string): CheckOutcome {
  const failure = asDeployError(error);
  if (failure.kind === 'usage' || failure.kind === 'lock' || failure.kind === 'internal') throw failure;
  if (context.signal.aborted) {
    // A download or staging cut short by SIGTERM/SIGINT: a stop, never a failed check (no backoff,
    // no /healthz failure, nothing counted against the revision).
    context.log.info(`check stopped: the agent is stopping (${failure.message.replace(/; the live release is unchanged.*$/, '')}); the live release is unchanged`);
    return { result: 'stopped', revision };
  }
  context.log.error(failure.message);
  return { result: 'failed', error: failure };
}

function recordCheck(state: AgentState, outcome: CheckOutcome, now: Date): void {
  const at = now.toISOString();
  const revision = 'revision' in outcome ? outcome.revision : undefined;
  state.lastCheck = { at, result: outcome.result, revision };
  if (outcome.result === 'unchanged' || outcome.result === 'updated' || outcome.result === 'waiting') {
    state.lastSuccessAt = at;
    state.consecutiveFailedChecks = 0;
    return;
  }
  if (outcome.result === 'stopped') return;
  state.consecutiveFailedChecks++;
  if ('error' in outcome) state.lastError = { at, message: outcome.error.message };
}
