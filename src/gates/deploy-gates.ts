// What may hold a new revision back before its update starts, checked in this order: an
// operator's pause, the deploy window, and min-age. A closed gate makes the revision wait: it is
// remembered (state.waiting), later checks only ask the remote "still this one?", and it is
// deployed at the first check after the gate opens. None of this touches a rollback.
import type { AgentContext } from '../core/agent-context.js';
import { windowStateAt } from '../core/deploy-window.js';
import { shortRevision } from '../release/failures.js';
import type { RemoteState } from '../core/remote-contract.js';
import { describePause, type Pause } from './pause.js';
import type { AgentState, GateKind, WaitingRevision } from '../release/state.js';

export interface ClosedGate {
  gate: GateKind;
  /** Completes "revision X ...": "waits for the deploy window, which opens at ...". */
  reason: string;
  eligibleAt?: Date;
}

/** The first gate that is closed for a revision first seen at `firstSeenAt`; undefined when it may be deployed now. */
export async function closedGate(context: AgentContext, pause: Pause | undefined, firstSeenAt: Date): Promise<ClosedGate | undefined> {
  const { settings } = context;
  const now = context.now();
  if (pause) return { gate: 'paused', reason: `waits: the agent is ${describePause(pause)}; "repo-deploy resume" lets it deploy` };
  if (settings.deployWindow.length > 0 && !context.ignoreWindow) {
    const window = await windowStateAt(settings.deployWindow, settings.deployWindowTimezone, now);
    if (!window.open) {
      const opens = window.opensAt ? `, which opens at ${window.opensAt.toISOString()}` : ', which never opens again';
      return { gate: 'deploy-window', reason: `waits for the deploy window${opens}`, eligibleAt: window.opensAt };
    }
  }
  const eligibleAt = new Date(firstSeenAt.getTime() + settings.minAgeMs);
  if (eligibleAt > now) {
    return { gate: 'min-age', reason: `waits for min-age: first seen at ${firstSeenAt.toISOString()}, it may be deployed from ${eligibleAt.toISOString()} if the remote keeps it`, eligibleAt };
  }
  return undefined;
}

/**
 * Remembers a revision that may not be deployed yet. Said at info level when it is new or its
 * reason changed (a -f run also sums it up as it exits), else at debug: a daemon waiting for a window must
 * not fill the log.
 */
export function noteWaiting(context: AgentContext, state: AgentState, waiting: Omit<WaitingRevision, 'gate' | 'reason' | 'eligibleAt'>, gate: ClosedGate): void {
  const before = state.waiting;
  if (before && before.remote === waiting.remote && before.revision !== waiting.revision) forgetWaiting(context, state, waiting.revision);
  const message = `revision ${shortRevision(waiting.revision)} ${gate.reason}`;
  if (before?.revision === waiting.revision && before.reason === gate.reason) context.log.debug(message, { revision: waiting.revision });
  else context.log.info(message, { revision: waiting.revision });
  state.waiting = { ...waiting, gate: gate.gate, reason: gate.reason, eligibleAt: gate.eligibleAt?.toISOString() };
}

/** A waiting revision the remote no longer has (it is at `now`, or back at what is live) is never deployed. */
export function forgetWaiting(context: AgentContext, state: AgentState, now?: string): void {
  const gone = state.waiting;
  if (!gone) return;
  context.log.info(`revision ${shortRevision(gone.revision)}, which was waiting, is no longer on the remote${now ? ` (now ${shortRevision(now)})` : ''}; it will not be deployed`, { revision: gone.revision });
  state.waiting = undefined;
}

/** The waiting revision of this remote, if any. */
export function waitingFor(state: AgentState, remoteKey: string): WaitingRevision | undefined {
  return state.waiting?.remote === remoteKey ? state.waiting : undefined;
}

/** What the remote last said of a waiting revision, so the next check's question stays cheap. */
export function refreshWaiting(waiting: WaitingRevision, remoteState: RemoteState | undefined): void {
  if (remoteState) waiting.remoteState = remoteState;
}
