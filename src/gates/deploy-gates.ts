// What may hold a new revision back before its update starts, checked in this order: an
// operator's pause, the deploy window, min-age, and the fleet (fleet/rollout.ts adds its gate). A closed gate makes the revision wait: it is
// remembered (state.waiting), later checks only ask the remote "still this one?", and it is
// deployed at the first check after the gate opens. None of this touches a rollback.
import type { AgentContext } from '../core/agent-context.js';
import { windowStateAt } from '../core/deploy-window.js';
import { shortRevision } from '../release/failures.js';
import type { RemoteState } from '../core/remote-contract.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { describePause, readPause } from './pause.js';
import type { AgentState, GateKind, WaitingRevision } from '../release/state.js';

export interface ClosedGate {
  gate: GateKind;
  /** Completes "revision X ...": "waits for the deploy window, which opens at ...". */
  reason: string;
  eligibleAt?: Date;
}

/**
 * One thing that may keep a new revision from being deployed yet. A check builds its list once,
 * in order (pause, deploy window, min-age, then the fleet when there is one), and asks it where it
 * decides: whether a revision still waits, and whether an update may start now.
 */
export interface DeployGate {
  readonly kind: GateKind;
  /**
   * A gate whose opening takes something (the fleet's slot): asked last, and only when the
   * update would start now, never to learn whether a revision still waits.
   */
  readonly takesASlot?: boolean;
  /** Undefined when the gate is open for this revision, first seen at `firstSeenAt`. */
  closedFor(revision: string, firstSeenAt: Date): Promise<ClosedGate | undefined>;
}

/** This server's own gates: an operator's pause (read at each asking: one set during a download holds), the deploy window, min-age. */
export function localGates(context: AgentContext): DeployGate[] {
  const { settings } = context;
  const cache = cacheLayoutFor(settings.cache);
  return [
    {
      kind: 'paused',
      async closedFor() {
        const pause = await readPause(cache);
        return pause ? { gate: 'paused', reason: `waits: the agent is ${describePause(pause)}; "repo-deploy resume" lets it deploy` } : undefined;
      },
    },
    {
      kind: 'deploy-window',
      async closedFor() {
        if (settings.deployWindow.length === 0 || context.ignoreWindow) return undefined;
        const window = await windowStateAt(settings.deployWindow, settings.deployWindowTimezone, context.now());
        if (window.open) return undefined;
        const opens = window.opensAt ? `, which opens at ${window.opensAt.toISOString()}` : ', which never opens again';
        return { gate: 'deploy-window', reason: `waits for the deploy window${opens}`, eligibleAt: window.opensAt };
      },
    },
    {
      kind: 'min-age',
      async closedFor(_revision, firstSeenAt) {
        const eligibleAt = new Date(firstSeenAt.getTime() + settings.minAgeMs);
        if (eligibleAt <= context.now()) return undefined;
        return { gate: 'min-age', reason: `waits for min-age: first seen at ${firstSeenAt.toISOString()}, it may be deployed from ${eligibleAt.toISOString()} if the remote keeps it`, eligibleAt };
      },
    },
  ];
}

/**
 * The first closed gate, in the list's order; undefined when the revision may be deployed now.
 * `admitting`: the update would start now, so a gate that takes a slot is asked too (last).
 */
export async function firstClosedGate(gates: readonly DeployGate[], revision: string, firstSeenAt: Date, { admitting }: { admitting: boolean }): Promise<ClosedGate | undefined> {
  for (const gate of gates) {
    if (gate.takesASlot && !admitting) continue;
    const closed = await gate.closedFor(revision, firstSeenAt);
    if (closed) return closed;
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
