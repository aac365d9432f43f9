// Counting failed updates of one revision, and holding a revision back once it has failed
// max-attempts times in a row, so a broken release is not downloaded and retried forever. The
// one module that writes `state.heldBack`: failed, refused and rolled-back revisions, and
// letting one go again.
import type { RemoteState } from '../core/remote-contract.js';
import type { Logger } from '../base/log.js';
import type { AgentState, DeployedRecord, HeldBackRevision } from './state.js';
import { shortRevision } from '../core/short-revision.js';

export function recordFailure(
  state: AgentState,
  revision: string,
  message: string,
  now: Date,
  maxAttempts: number,
  remoteState: RemoteState,
  log: Logger,
): boolean {
  let record = state.failures.find((failure) => failure.revision === revision);
  if (!record) {
    record = { revision, count: 0, firstAt: now.toISOString(), lastAt: '', lastError: '' };
    state.failures.push(record);
  }
  record.count++;
  record.lastAt = now.toISOString();
  record.lastError = message;
  if (record.count >= maxAttempts) {
    // "failed since": the first failure of the run, when the trouble began.
    state.heldBack = { revision, remoteState, reason: 'failed', since: record.firstAt ?? now.toISOString(), lastError: message };
    log.warn(
      `revision ${shortRevision(revision)} failed ${record.count} times in a row and is held back: it is not tried again until the remote changes, or until you run "repo-deploy retry"`,
      { revision },
    );
    return true;
  }
  return false;
}

export function forgetFailures(state: AgentState, revision: string): void {
  state.failures = state.failures.filter((failure) => failure.revision !== revision);
  if (state.heldBack?.revision === revision) state.heldBack = undefined;
}

export { shortRevision };

/** Content the operator's keys do not vouch for, judged under the trust settings `trust`. */
export function holdBackRefused(state: AgentState, refusal: { revision: string; remoteState: RemoteState; message: string }, trust: string, now: Date): void {
  state.heldBack = { revision: refusal.revision, remoteState: refusal.remoteState, reason: 'refused', since: now.toISOString(), lastError: refusal.message, trust };
}

/** The revision a rollback went away from stays away until the remote moves on. */
export function holdBackRolledAway(state: AgentState, rolledAway: DeployedRecord, now: Date): void {
  state.heldBack = { revision: rolledAway.revision, remoteState: rolledAway.remoteState, reason: 'rolled-back', since: now.toISOString() };
}

/** Lets a held-back revision be tried again; returns what was held back, if anything. */
export function releaseHeldBack(state: AgentState): HeldBackRevision | undefined {
  const held = state.heldBack;
  state.heldBack = undefined;
  return held;
}
