// Switching the live path from one release to another, the heart of an update and of a
// rollback: pre-update hooks (a failure blocks), the atomic swap, post-update hooks (a failure
// reverts and runs the hooks again in phase "revert"). Each step is journaled in the state
// before it runs, so a crash anywhere is finished or undone by the next start (recovery.ts).
import { DeployError, messageOf } from './errors.js';
import { runHooks, type HookEnvironment, type HookPhase } from './hooks.js';
import { pointLiveAt, releasePath, type Layout } from './releases.js';
import { saveState, type AgentState, type SwitchStep, type UpdateInProgress } from './state.js';
import { pausePoint } from './test-pause.js';
import type { AgentContext } from './update.js';

export interface SwitchRequest {
  kind: UpdateInProgress['kind'];
  release: string;
  revision: string;
  previousRelease: string | undefined;
  previousRevision: string;
  /** A release made for this switch is removed if the switch fails; a rollback's target is kept. */
  removeOnFailure: boolean;
}

export type SwitchResult = { switched: true } | { switched: false; stage: 'pre-update' | 'post-update'; error: DeployError };

export async function switchRelease(context: AgentContext, layout: Layout, state: AgentState, request: SwitchRequest): Promise<SwitchResult> {
  const { settings, log } = context;
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
    };
    await saveState(settings.cache, state);
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
    await runPhase(context, settings.preHooks, phase('pre-update'), 'pre-hook', forward, true);
  } catch (error) {
    state.inProgress = undefined;
    return { switched: false, stage: 'pre-update', error: asDeployError(error) };
  }

  await journal('swap');
  await pausePoint('swap');
  await pointLiveAt(layout, request.release, () => pausePoint('before-rename'));
  log.info(`live path ${layout.live} now points at release ${request.release}`, { release: request.release, revision: request.revision });
  await journal('post-update');
  await pausePoint('post-update');

  try {
    await runPhase(context, settings.postHooks, phase('post-update'), 'post-hook', forward, true);
  } catch (error) {
    await revertSwitch(context, layout, state);
    return { switched: false, stage: 'post-update', error: asDeployError(error) };
  }
  state.inProgress = undefined;
  return { switched: true };
}

/**
 * Puts the previous release back (or removes the live link when there was none) and runs the
 * post-update hooks in phase "revert", so the application reloads the old version. Used after a
 * failed post-update hook and by crash recovery; safe to run twice.
 */
export async function revertSwitch(context: AgentContext, layout: Layout, state: AgentState): Promise<void> {
  const { settings, log } = context;
  const journaled = state.inProgress;
  if (!journaled) return;
  state.inProgress = { ...journaled, step: 'revert' };
  await saveState(settings.cache, state);
  await pointLiveAt(layout, journaled.previousRelease);
  log.warn(
    journaled.previousRelease
      ? `reverted the live path to release ${journaled.previousRelease}`
      : `removed the live path ${layout.live}: there was no release before ${journaled.release}`,
    { release: journaled.previousRelease, revision: journaled.previousRevision },
  );
  await pausePoint('revert');
  try {
    // Not cut short by a stop: this is what puts the application back on its feet.
    await runPhase(context, settings.postHooks, 'revert', 'post-hook', {
      currentConfig: journaled.previousRelease ? releasePath(layout, journaled.previousRelease) : '',
      previousConfig: releasePath(layout, journaled.release),
      revision: journaled.previousRevision,
      previousRevision: journaled.revision,
    }, false);
  } catch (error) {
    log.error(`a post-update hook failed again while reverting: ${messageOf(error)}; check the application by hand`);
  }
  state.inProgress = undefined;
}

function runPhase(
  context: AgentContext,
  directory: string,
  phase: HookPhase,
  failureKind: 'pre-hook' | 'post-hook',
  hookEnvironment: HookEnvironment,
  stoppable: boolean,
): Promise<void> {
  return runHooks({
    directory,
    phase,
    hookEnvironment,
    baseEnv: context.env,
    timeoutMs: context.settings.hookTimeoutMs,
    log: context.log,
    signal: stoppable ? context.signal : undefined,
    stopGraceMs: context.settings.stopGraceMs,
    failureKind,
  });
}

export function asDeployError(error: unknown): DeployError {
  return error instanceof DeployError ? error : new DeployError('internal', messageOf(error), { cause: error });
}
