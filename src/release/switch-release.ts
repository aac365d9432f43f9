// Switching the live path from one release to another, the heart of an update and of a
// rollback: pre-update hooks (a failure blocks), the atomic swap, post-update hooks (a failure
// reverts and runs the hooks again in phase "revert"), then for an update the health gate (a
// failure reverts the same way). Each step is journaled in the state
// before it runs, so a crash anywhere is finished or undone by the next start (recovery.ts).
// Going back never needs free space: the link is pointed back first and the journal written
// after, so a disk that the new release (or its hooks) filled cannot keep a failed release live.
import { DeployError, hostError, messageOf, noSpaceError } from '../base/errors.js';
import { passHealthGate } from './health-gate.js';
import { runHooks, type HookEnvironment, type HookPhase } from './hooks.js';
import { pointLiveAt, readLiveRelease, releasePath, type Layout } from './releases.js';
import { processStartTime } from '../base/process-identity.js';
import { saveState, type AgentState, type SwitchStep, type UpdateInProgress } from './state.js';
import { delayPoint, pausePoint } from '../base/test-pause.js';
import type { AgentContext } from '../core/agent-context.js';

export interface SwitchRequest {
  kind: UpdateInProgress['kind'];
  release: string;
  revision: string;
  previousRelease: string | undefined;
  previousRevision: string;
  /** A release made for this switch is removed if the switch fails; a rollback's target is kept. */
  removeOnFailure: boolean;
  /** The fleet slot the update runs in, when in a fleet. */
  fleetSlot?: FleetSlot;
}

/** An update's place in a fleet rollout. */
export interface FleetSlot {
  /** The fleet-name: a crash after the swap is reported to this fleet when the agent next joins it. */
  fleet: string;
  canary: boolean;
  /** Asked after the pre-update hooks, just before the swap: a reason not to swap (a fleet slot lost, a fleet halt), or undefined. */
  mayProceed: () => Promise<string | undefined>;
  /**
   * Asked once the post-update hooks and the gate passed, before the update counts as done: a
   * reason to take the release back (the slot lapsed while this server was paused, and another
   * may have held it), or undefined.
   */
  mayCommit: () => Promise<string | undefined>;
}

/**
 * `stopped`: the agent was asked to stop (SIGTERM, SIGINT) and abandoned the switch: not a
 * failure of the revision, which is tried again at the next start.
 */
export type SwitchResult =
  | { switched: true }
  | { switched: false; stage: 'pre-update' | 'post-update'; error: DeployError; stopped: boolean; abandoned?: boolean; revert?: RevertResult };

/** What a revert left live, and why going back failed when it did. */
export interface RevertResult {
  live: string | undefined;
  failure?: DeployError;
}

export async function switchRelease(context: AgentContext, layout: Layout, state: AgentState, request: SwitchRequest): Promise<SwitchResult> {
  const { settings, log } = context;
  const stopped = () => context.signal.aborted;
  const journal = async (step: SwitchStep) => {
    state.inProgress = {
      kind: request.kind,
      step,
      release: request.release,
      revision: request.revision,
      previousRelease: request.previousRelease,
      previousRevision: request.previousRevision,
      removeOnFailure: request.removeOnFailure,
      startedAt: state.inProgress?.startedAt ?? context.now().toISOString(),
      fleet: request.fleetSlot ? { name: request.fleetSlot.fleet, canary: request.fleetSlot.canary } : undefined,
    };
    await persistState(context, state);
  };
  const forward: HookEnvironment = {
    currentConfig: releasePath(layout, request.release),
    previousConfig: request.previousRelease ? releasePath(layout, request.previousRelease) : '',
    revision: request.revision,
    previousRevision: request.previousRevision,
  };
  const phase = (update: HookPhase): HookPhase => (request.kind === 'rollback' ? 'rollback' : update);

  await journal('pre-update');
  await pausePoint('pre-update');
  try {
    await runPhase(context, state, settings.preHooks, phase('pre-update'), 'pre-hook', forward, true);
  } catch (error) {
    state.inProgress = undefined;
    return { switched: false, stage: 'pre-update', error: asDeployError(error), stopped: stopped() };
  }
  // Once a stop is asked for, no new step starts: the hooks passed, but the swap waits for the next start.
  if (stopped()) {
    state.inProgress = undefined;
    log.info(`the agent is stopping: release ${request.release} is not made live; the next start tries again`);
    return { switched: false, stage: 'pre-update', error: new DeployError('pre-hook', 'the agent is stopping'), stopped: true };
  }
  const veto = await request.fleetSlot?.mayProceed();
  if (veto) {
    state.inProgress = undefined;
    return { switched: false, stage: 'pre-update', error: new DeployError('fleet', `${veto}; the update was abandoned before the swap`, { hint: 'the live release is unchanged; the next check asks the fleet again' }), stopped: false, abandoned: true };
  }

  try {
    await journal('swap');
    await pausePoint('swap');
    await pointLiveAt(layout, request.release, () => pausePoint('before-rename'));
  } catch (error) {
    // A full disk can fail the journal, the new link or the flush after the rename: only the
    // link on disk says whether the swap happened, and so whether there is anything to undo.
    if ((await readLiveRelease(layout).catch(() => undefined)) !== request.release) {
      state.inProgress = undefined;
      throw error;
    }
    return failedAfterSwap(context, layout, state, error);
  }
  log.info(`live path ${layout.live} now points at release ${request.release}`, { release: request.release, revision: request.revision });

  try {
    await journal('post-update');
    await pausePoint('post-update');
    await runPhase(context, state, settings.postHooks, phase('post-update'), 'post-hook', forward, true);
    // The health gate: after an update, and after a rollback the fleet asked for (it goes through the fleet's gated path).
    if ((request.kind === 'update' || request.fleetSlot) && settings.healthCheck) {
      await journal('gate');
      await pausePoint('gate');
      await runGate(context, state, settings.healthCheck, forward);
    }
  } catch (error) {
    return failedAfterSwap(context, layout, state, error);
  }
  // The release passed, but this server may no longer be one the fleet let through: taken back,
  // as a failure is, yet not counted against the revision (the next check asks for a slot again).
  const lapsed = await request.fleetSlot?.mayCommit();
  if (lapsed) {
    const takenBack = await failedAfterSwap(context, layout, state, new DeployError('fleet', `${lapsed}; the release is taken back`));
    return takenBack.switched ? takenBack : { ...takenBack, abandoned: true };
  }
  state.inProgress = undefined;
  return { switched: true };
}

/**
 * The new release is live and failed (a hook, the gate, or a journal write on a full disk): it
 * goes back. The failure is logged before anything else, so that going back failing too cannot
 * hide it.
 */
async function failedAfterSwap(context: AgentContext, layout: Layout, state: AgentState, error: unknown): Promise<SwitchResult> {
  const failure = noSpaceError(error, undefined, 'free some space there') ?? asDeployError(error);
  const failedRelease = state.inProgress?.release;
  const back = `going back to ${state.inProgress?.previousRelease ? `release ${state.inProgress.previousRelease}` : 'no release (a first deploy)'}`;
  // A stop is no failure of the release (reportFailedSwitch says so); anything else is, and is said now.
  if (context.signal.aborted) context.log.warn(`release ${failedRelease} is taken back because the agent is stopping (${failure.message}); ${back}`, { release: failedRelease });
  else context.log.error(`release ${failedRelease} failed after it went live: ${failure.message}; ${back}`, { release: failedRelease });
  const revert = await revertSwitch(context, layout, state);
  return { switched: false, stage: 'post-update', error: failure, stopped: context.signal.aborted, revert };
}

/** The health gate of an update, its check command's process group journaled like a hook's. */
async function runGate(context: AgentContext, state: AgentState, check: string, hookEnvironment: HookEnvironment): Promise<void> {
  const { settings } = context;
  await withJournaledProcesses(context, state, (journalStarted) =>
    passHealthGate({
      gate: { check, timeoutMs: settings.healthTimeoutMs, settleMs: settings.healthSettleMs, intervalMs: settings.healthIntervalMs },
      hookEnvironment,
      baseEnv: context.env,
      log: context.log,
      signal: context.signal,
      now: context.now,
      onProcess: (pid) => journalStarted('health-check', pid),
    }),
  );
}

/**
 * Runs `work`, journaling each child process it reports (a hook, the health check) so that
 * recovery after a crash can end it. The journal writes go one after another and are all done
 * before this returns, so none can land after (and over) a later save of the state.
 */
async function withJournaledProcesses(context: AgentContext, state: AgentState, work: (journalStarted: (name: string, pid: number) => void) => Promise<void>): Promise<void> {
  let journaling = Promise.resolve();
  try {
    await work((name, pid) => {
      journaling = journaling.then(() => journalRunningHook(context, state, name, pid));
    });
  } finally {
    await journaling;
    if (state.inProgress) state.inProgress.hookProcess = undefined;
  }
}

/**
 * Puts the previous release back (or removes the live link when there was none) and runs the
 * post-update hooks in phase "revert", so the application reloads the old version. Used after a
 * failed post-update hook and by crash recovery; safe to run twice.
 */
export async function revertSwitch(context: AgentContext, layout: Layout, state: AgentState): Promise<RevertResult> {
  const { settings, log } = context;
  const journaled = state.inProgress;
  if (!journaled) return { live: await readLiveRelease(layout) };
  state.inProgress = { ...journaled, step: 'revert', hookProcess: undefined };
  // The link first: it needs no free space, where the journal may not be writable (a full disk).
  // Interrupted between the two, the next start finds the live path at the previous release and
  // finishes the revert (recovery treats that as already swapped back).
  try {
    await pointLiveAt(layout, journaled.previousRelease);
  } catch (error) {
    const live = await readLiveRelease(layout).catch(() => undefined);
    const cause = noSpaceError(error, undefined, 'free some space there') ?? asDeployError(error);
    const message = `could not point the live path ${layout.live} back to ${journaled.previousRelease ? `release ${journaled.previousRelease}` : 'nothing'} (${cause.message}); ${live ? `release ${live} is live` : 'nothing is live'}`;
    log.error(`${message}; put it back by hand (repo-deploy rollback) once the cause is fixed`, { release: live });
    state.inProgress = journaled;
    return { live, failure: new DeployError('internal', message, { hint: 'put it back by hand (repo-deploy rollback) once the cause is fixed', cause: error }) };
  }
  await persistState(context, state).catch((error: unknown) =>
    log.warn(`could not journal the revert (${messageOf(noSpaceError(error, undefined, 'free some space there') ?? error)}); the live path already points back, and a run interrupted now is finished by the next start`),
  );
  log.warn(
    journaled.previousRelease
      ? `reverted the live path to release ${journaled.previousRelease}`
      : `nothing is live at ${layout.live} now: the live path is removed, as there was no release before ${journaled.release} to go back to (repo-deploy adopt makes an existing directory that release)`,
    { release: journaled.previousRelease, revision: journaled.previousRevision },
  );
  await pausePoint('revert');
  try {
    // Not cut short by a stop: this is what puts the application back on its feet. But during
    // a stop it has stop-grace, not hook-timeout, so the whole stop stays within a bound that a
    // service manager's stop timeout can allow for (see docs/running.md).
    await runPhase(context, state, settings.postHooks, 'revert', 'post-hook', {
      currentConfig: journaled.previousRelease ? releasePath(layout, journaled.previousRelease) : '',
      previousConfig: releasePath(layout, journaled.release),
      revision: journaled.previousRevision,
      previousRevision: journaled.revision,
    }, false, context.signal.aborted ? Math.min(settings.stopGraceMs || 1000, settings.hookTimeoutMs) : undefined);
  } catch (error) {
    log.error(`a post-update hook failed again while reverting: ${messageOf(error)}; check the application by hand`);
  }
  state.inProgress = undefined;
  return { live: journaled.previousRelease };
}

async function runPhase(
  context: AgentContext,
  state: AgentState,
  directory: string,
  phase: HookPhase,
  failureKind: 'pre-hook' | 'post-hook',
  hookEnvironment: HookEnvironment,
  stoppable: boolean,
  timeoutMs = context.settings.hookTimeoutMs,
): Promise<void> {
  await withJournaledProcesses(context, state, (journalStarted) =>
    runHooks({
      directory,
      phase,
      hookEnvironment,
      baseEnv: context.env,
      timeoutMs,
      log: context.log,
      signal: stoppable ? context.signal : undefined,
      stopGraceMs: context.settings.stopGraceMs,
      failureKind,
      onHookStarted: journalStarted,
    }),
  );
}

/** Records the running hook's process group, so that recovery after a crash can end it. */
async function journalRunningHook(context: AgentContext, state: AgentState, hook: string, pid: number): Promise<void> {
  const startTime = await processStartTime(pid);
  if (!state.inProgress || startTime === undefined) return;
  state.inProgress.hookProcess = { hook, pid, startTime };
  await persistState(context, state, () => delayPoint('hook-journal')).catch((error: unknown) => context.log.warn(`could not journal hook ${hook}: ${messageOf(error)}`));
}

// Saves of the state made while a switch runs go one after another, so an older snapshot can
// never be renamed over a newer one.
const pendingSaves = new WeakMap<AgentState, Promise<void>>();

function persistState(context: AgentContext, state: AgentState, beforeWrite?: () => Promise<void>): Promise<void> {
  const previous = pendingSaves.get(state) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(() => saveState(context.settings.cache, state, beforeWrite));
  pendingSaves.set(state, next);
  return next;
}

export function asDeployError(error: unknown): DeployError {
  if (error instanceof DeployError) return error;
  return hostError(error) ?? new DeployError('internal', messageOf(error), { cause: error });
}
