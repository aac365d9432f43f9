// At the start of every check (with the lock held): finishes or undoes a release switch that a
// crash interrupted, as journaled in the state. Before the swap, the unfinished release is
// removed; from the swap on (post-update hooks, the health gate, a revert), the switch counts as
// a failed post-update: the previous release is put back and the post-update hooks run in phase
// "revert".
import { removeRelease, type Layout } from './releases.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../base/log.js';
import { processStartTime } from '../base/process-identity.js';
import type { AgentState, RunningHook } from './state.js';
import { revertSwitch } from './switch-release.js';
import type { AgentContext } from '../core/agent-context.js';
import { recordFailure } from './failures.js';
import { interruptedAfterSwap } from './switch-steps.js';
import { tell } from '../history/record.js';

export async function recoverInterruptedSwitch(context: AgentContext, layout: Layout, state: AgentState, liveRelease: string | undefined): Promise<string | undefined> {
  const journal = state.inProgress;
  if (!journal) return liveRelease;
  const { log } = context;
  // Before anything else: a hook of the crashed run may still be running, and must not overlap
  // the revert hooks (or a new update) that follow.
  if (journal.hookProcess) await endLeftoverHook(journal.hookProcess, log);
  const swapped = liveRelease === journal.release && journal.release !== journal.previousRelease;
  const afterSwap = interruptedAfterSwap(journal.step, swapped);
  const what = `${journal.kind === 'rollback' ? 'a rollback' : 'an update'} to release ${journal.release}`;
  if (afterSwap) {
    log.warn(`${what} was interrupted during ${journal.step}; reverting to ${journal.previousRelease ?? 'no release'}`, {
      release: journal.release,
      revision: journal.revision,
    });
    const revert = await revertSwitch(context, layout, state);
    if (revert.failure) throw revert.failure;
    if (journal.kind === 'update') {
      const reason = `${what} was interrupted during ${journal.step}`;
      recordFailure(state, journal.revision, reason, context.now(), context.settings.maxAttempts, {}, log);
      // A revision that kills its host must count against it in the fleet, as a failed hook does.
      if (journal.fleet) {
        state.fleetReports = [...(state.fleetReports ?? []), { fleet: journal.fleet.name, revision: journal.revision, canary: journal.fleet.canary, reason: `${reason} (the agent stopped or crashed after the swap)`, at: context.now().toISOString() }];
      }
    }
  } else {
    log.warn(`${what} was interrupted during ${journal.step}, before the swap; the live release is unchanged`, {
      release: journal.release,
      revision: journal.revision,
    });
    state.inProgress = undefined;
  }
  if (journal.removeOnFailure) await removeRelease(layout, journal.release);
  await tell(context, { event: 'recovery', kind: journal.kind, release: journal.release, revisionTo: journal.revision, previousRelease: journal.previousRelease, revisionFrom: journal.previousRevision || undefined, step: journal.step, reverted: afterSwap, exitCode: 0 });
  return afterSwap ? journal.previousRelease : liveRelease;
}

/** Ends the process group of a hook a crashed run left running, if that pid is still that hook. */
async function endLeftoverHook(hook: RunningHook, log: Logger): Promise<void> {
  if ((await processStartTime(hook.pid)) !== hook.startTime) {
    log.debug(`hook ${hook.hook} (process ${hook.pid}) of the interrupted run is no longer running`);
    return;
  }
  try {
    process.kill(-hook.pid, 'SIGKILL');
  } catch {
    return; // The group ended meanwhile.
  }
  // SIGKILL cannot be ignored; wait for the leader to be gone so nothing overlaps what follows.
  for (let waited = 0; waited < 5_000 && (await processStartTime(hook.pid)) === hook.startTime; waited += 20) await sleep(20);
  log.warn(`ended hook ${hook.hook} (process group ${hook.pid}), left running by the interrupted run`);
}
