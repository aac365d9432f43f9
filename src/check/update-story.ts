// An update told to the deploy history as a story: its start (once the release is staged, with
// the files it adds, changes and removes), then its end with the check's outcome and duration;
// and what a check changed besides (a new hold, a new wait, a first failed check).
import type { AgentContext, CheckOutcome } from '../core/agent-context.js';
import { filesChanged } from '../history/files-changed.js';
import type { WrittenManifest } from '../verify/manifest.js';
import { tell, type HistoryEventName } from '../history/record.js';
import type { AgentState } from '../release/state.js';

/** An update under way, remembered from its start until the check's outcome is told. */
interface UpdateStory {
  startedAt: number;
  fields: Record<string, unknown>;
}
const stories = new WeakMap<AgentState, UpdateStory>();

export interface UpdateStart {
  release: string;
  previousRelease: string | undefined;
  revisionFrom: string | undefined;
  revisionTo: string;
  remote: string;
  /** The remote's words for the revision (commit, archive and its sha256). */
  description: string;
  remoteState: unknown;
  /** Git: the commit's subject and author. */
  commit?: { subject: string; author: string };
  /** The live release's manifest file, and the new release's manifest (just written), for the files added, changed, removed. */
  manifests: { from: string | undefined; to: WrittenManifest };
}

/** Called once the new release is staged, before its pre-update hooks. */
export async function tellUpdateStarted(context: AgentContext, state: AgentState, start: UpdateStart): Promise<void> {
  if (!context.settings.history) return;
  const files = await filesChanged(start.manifests.from, start.manifests.to);
  const fields = {
    release: start.release,
    previousRelease: start.previousRelease,
    revisionFrom: start.revisionFrom || undefined,
    revisionTo: start.revisionTo,
    remote: start.remote,
    description: start.description,
    remoteState: start.remoteState,
    commit: start.commit,
    files,
  };
  stories.set(state, { startedAt: context.now().getTime(), fields });
  await tell(context, { event: 'update-started', ...fields });
}

/** What the state was before a check, to tell what the check changed. */
export interface StateBefore {
  heldBack?: string;
  waiting?: string;
  failedChecksInARow: number;
}

export function stateBefore(state: AgentState): StateBefore {
  return { heldBack: state.heldBack ? `${state.heldBack.reason}:${state.heldBack.revision}` : undefined, waiting: state.waiting?.revision, failedChecksInARow: state.consecutiveFailedChecks };
}

const endEvents: Partial<Record<CheckOutcome['result'], HistoryEventName>> = {
  updated: 'update-committed',
  blocked: 'update-blocked',
  reverted: 'update-reverted',
  failed: 'update-failed',
  stopped: 'update-stopped',
};

/** After a check: the end of an update it started, a new hold, a new wait, a first failed check. */
export async function tellCheckOutcome(context: AgentContext, before: StateBefore, state: AgentState, outcome: CheckOutcome): Promise<void> {
  const story = stories.get(state);
  stories.delete(state);
  const error = 'error' in outcome ? outcome.error : undefined;
  const failure = error ? { error: error.message, exitCode: error.exitCode } : { exitCode: 0 };
  if (story) {
    const event = endEvents[outcome.result] ?? 'update-failed';
    await tell(context, { event, ...story.fields, ...failure, durationMs: context.now().getTime() - story.startedAt });
  } else if (outcome.result === 'failed' && before.failedChecksInARow === 0) {
    await tell(context, { event: 'check-failed', ...failure });
  }
  const held = state.heldBack;
  if (held && `${held.reason}:${held.revision}` !== before.heldBack && held.reason !== 'rolled-back') {
    await tell(context, { event: held.reason === 'refused' ? 'refused' : 'held-back', revisionTo: held.revision, error: held.lastError, exitCode: held.reason === 'refused' ? 8 : 7 });
  }
  if (outcome.result === 'waiting' && outcome.revision !== before.waiting) {
    await tell(context, { event: 'update-waiting', revisionTo: outcome.revision, gate: outcome.gate, reason: outcome.reason, eligibleAt: outcome.eligibleAt, exitCode: 0 });
  }
}
