// What the agent remembers between checks, in <cache>/state.json, written atomically. Losing it
// costs a re-download, never a wrong deployment: the live link on disk is the truth about what
// is live, and the state is reconciled with it at every check.
import { readFile } from 'node:fs/promises';
import { writeFileAtomically } from '../base/atomic-file.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { systemErrorCode } from '../base/errors.js';
import type { GateKind } from '../core/agent-context.js';
import type { SwitchStep } from './switch-steps.js';
import type { RemoteState } from '../core/remote-contract.js';

export type { GateKind };

export type ReleaseStatus = 'live' | 'previous' | 'retired' | 'rolled-back' | 'adopted';

export interface ReleaseRecord {
  id: string;
  revision: string;
  createdAt: string;
  deployedAt?: string;
  /**
   * Deployed while a trust setting asked for verified content (the fetchers refuse anything
   * else), so what it holds was verified; false: deployed with none set, or adopted. Absent in
   * releases made by an older repo-deploy. See unverifiedRefusal (src/verify/refusal.ts).
   */
  verified?: boolean;
  /**
   * Only what the state cannot tell otherwise: a release rolled away from, or adopted. Live and
   * previous are derived from `current` and `previous` (releaseStatus); older agents also
   * stored those words here, which are read as "retired" once they no longer hold.
   */
  status?: ReleaseStatus;
}

export interface DeployedRecord {
  release: string;
  /** Empty when unknown (the state was lost while the live link survived). */
  revision: string;
  remoteState: RemoteState;
}

export interface FailureRecord {
  revision: string;
  count: number;
  /** The first failure of this run of failures (absent in states written before it was kept). */
  firstAt?: string;
  lastAt: string;
  lastError: string;
}

/**
 * The journal of a release switch (an update or a rollback), saved before each step so that
 * the next start can finish or undo a switch a crash interrupted.
 */
export type { SwitchStep };

export interface UpdateInProgress {
  kind: 'update' | 'rollback';
  step: SwitchStep;
  release: string;
  revision: string;
  previousRelease: string | undefined;
  previousRevision: string;
  /** Whether the release was made for this switch (and so is removed if it fails). */
  removeOnFailure: boolean;
  startedAt: string;
  /** The hook running now, whose process group a crash of the agent would leave behind. */
  hookProcess?: RunningHook;
  /** The fleet whose slot the update runs in: a crash after the swap is reported to it. */
  fleet?: { name: string; canary: boolean };
}

/** A failed update the fleet has not been told of yet (the agent crashed after the swap). */
export interface FleetReport {
  fleet: string;
  revision: string;
  canary: boolean;
  reason: string;
  at: string;
}

export interface RunningHook {
  hook: string;
  /** Its pid, which is also its process group id. */
  pid: number;
  /** The kernel's start time of that pid, so a reused pid is never signalled. */
  startTime: string;
}

export interface HeldBackRevision {
  revision: string;
  /** The remote's answer for it (ETag, commit), so checks ask "still this one?" without downloading it. */
  remoteState: RemoteState;
  reason: 'failed' | 'rolled-back' | 'refused';
  since: string;
  lastError?: string;
  /** For a refusal: the trust settings it was judged under (see trustFingerprint). */
  trust?: string;
}

/** A new revision seen on the remote that may not be deployed yet (paused, outside the deploy window, younger than min-age). */
export interface WaitingRevision {
  revision: string;
  /** The remote (redacted) it was seen on: a change of remote starts afresh. */
  remote: string;
  /** The remote's answer for it, so later checks ask "still this one?" without downloading it. */
  remoteState: RemoteState;
  /** When this agent first saw the remote at this revision: min-age counts from here. */
  firstSeenAt: string;
  gate: GateKind;
  reason: string;
  /** When the gate is expected to open (the window's opening, min-age reached); none for a pause. */
  eligibleAt?: string;
}


export interface AgentState {
  version: 1;
  /** The remote, redacted, that remoteState belongs to. */
  remote?: string;
  current?: DeployedRecord;
  previous?: DeployedRecord;
  /** Releases this agent created and that are still on disk, oldest first. */
  releases: ReleaseRecord[];
  lastCheck?: { at: string; result: string; revision?: string };
  lastSuccessAt?: string;
  lastError?: { at: string; message: string };
  consecutiveFailedChecks: number;
  failures: FailureRecord[];
  inProgress?: UpdateInProgress;
  /** The remote asked (Retry-After) not to be asked again before this time. */
  remoteQuietUntil?: string;
  /** A live link found pointing at a release directory that is gone; cleared once something is live again. */
  brokenLive?: string;
  /** A revision not to deploy again until the remote changes or `repo-deploy retry`. */
  heldBack?: HeldBackRevision;
  waiting?: WaitingRevision;
  /** Failures to report to the fleet at the next check that joins it. */
  fleetReports?: FleetReport[];
  /** What this member knows of its fleet, kept so that a Redis that lost its data is noticed and its halts are not lost with it. */
  fleet?: FleetMemory;
}

export interface FleetMemory {
  name: string;
  /** The fleet's epoch id as last seen. */
  epoch: string;
  /** The fleet halt as last seen, if any. */
  halt?: { reason: string; by: string; at: string };
  /** Halted revisions as last seen: revision -> reason. */
  halted: Record<string, string>;
}

const stateFilePath = (cacheDirectory: string) => cacheLayoutFor(cacheDirectory).stateFile;

export const emptyState = (): AgentState => ({ version: 1, releases: [], consecutiveFailedChecks: 0, failures: [] });

export async function loadState(cacheDirectory: string): Promise<AgentState> {
  const path = stateFilePath(cacheDirectory);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return emptyState();
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as Partial<AgentState>;
    if (parsed.version !== 1) return emptyState();
    return { ...emptyState(), ...parsed };
  } catch {
    // Written atomically, so a broken file means outside tampering; start afresh rather than trust it.
    return emptyState();
  }
}

export async function saveState(cacheDirectory: string, state: AgentState, beforeWrite?: () => Promise<void>): Promise<void> {
  // The snapshot is taken now; `beforeWrite` (a test's delay) runs between it and the write.
  const content = JSON.stringify(state, null, 2) + '\n';
  await beforeWrite?.();
  await writeFileAtomically(stateFilePath(cacheDirectory), content);
}

/** A release's status, derived from which release is live and which was before it. */
export function releaseStatus(state: AgentState, release: ReleaseRecord): ReleaseStatus {
  if (release.id === state.current?.release) return 'live';
  // What happened to a release says more than its place: rolled away from, adopted.
  if (release.status === 'rolled-back' || release.status === 'adopted') return release.status;
  return release.id === state.previous?.release ? 'previous' : 'retired';
}

/**
 * Records that a switch made `next` live: the one place update, rollback and the repair of a
 * missing live release change which release the state calls live. `leaving` says what becomes of
 * the release that was live: it stays the one to go back to ('previous'), it was rolled away from
 * ('rolled-back'), or it is gone from disk ('missing', so it is no rollback target).
 */
export function recordLiveRelease(state: AgentState, next: DeployedRecord, leaving: 'previous' | 'rolled-back' | 'missing'): void {
  const left = state.current;
  if (leaving !== 'missing') state.previous = left;
  const recordOf = (id: string | undefined) => state.releases.find((release) => release.id === id);
  if (leaving === 'rolled-back' && left) {
    const record = recordOf(left.release);
    if (record) record.status = 'rolled-back';
  }
  // A release rolled away from and then rolled back to is a good one again.
  const made = recordOf(next.release);
  if (made?.status === 'rolled-back') delete made.status;
  state.current = next;
}
