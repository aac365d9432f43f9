// The context every locked operation runs in (settings, logger, environment, clock, stop
// signal) and what a check reports. A bottom layer: update, switch-release, recovery, the daemon
// and the commands all import it, and it imports none of them.
import type { Settings } from './settings.js';
import type { DeployError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import type { ProgressSink } from '../base/progress.js';
import type { PendingRevision } from './remote-contract.js';

/** What keeps a new revision waiting: an operator's pause, the deploy window, min-age, the fleet. */
export type GateKind = 'paused' | 'deploy-window' | 'min-age' | 'fleet';

export interface AgentContext {
  settings: Settings;
  log: Logger;
  /** The environment hooks and git inherit, read once at start. */
  env: NodeJS.ProcessEnv;
  now: () => Date;
  /** Aborted when the agent must stop. */
  signal: AbortSignal;
  /** How long to wait for a lock another run holds; 0 fails at once. */
  lockWaitMs: number;
  /** A terminal's progress bar for -f, if any. */
  progress?: ProgressSink;
  /** -f --ignore-window: an operator deploys now, whatever deploy-window says. */
  ignoreWindow?: boolean;
  /**
   * check-config: the check runs as a real one does (remote, held-back state, gates) and stops
   * where an update would begin, saying "would-update"; nothing is kept or saved.
   */
  preview?: boolean;
  /**
   * `repo-deploy plan`: in a preview, the revision that would be deployed is handed here (staged
   * apart, compared with the live release, thrown away) before the preview says would-update.
   */
  previewStage?: (pending: PendingRevision) => Promise<void>;
  /**
   * drift-action = redeploy: the live release drifted from its manifest, so this check deploys
   * the remote's revision again as a new release (hooks and all), even when it is the live one.
   */
  redeployRelease?: string;
  /**
   * In a fleet: whether this member is the first to tell `event` of `revision`; notifications of
   * the rollout's progress (an update started, committed) are sent by that one member only.
   */
  firstInFleetToTell?: (event: string, revision: string) => Promise<boolean>;
  /** Who asked for this run, for the deploy history: "schedule", "SIGHUP", "webhook <proof>"; unset: the operator running a command. */
  trigger?: string;
}

export type CheckOutcome =
  | { result: 'unchanged'; release: string | undefined; revision: string | undefined; heldBackSinceRollback?: string }
  | { result: 'updated'; release: string; revision: string }
  | { result: 'held-back'; revision: string }
  | { result: 'blocked'; revision: string; error: DeployError }
  | { result: 'reverted'; revision: string; error: DeployError }
  | { result: 'refused'; revision: string; error: DeployError }
  | { result: 'failed'; error: DeployError }
  /** The agent was asked to stop and abandoned the check or the update: not a failure (revision: when one was found). */
  | { result: 'stopped'; revision?: string }
  /** Only in a preview (check-config): a new revision the next check would deploy. */
  | { result: 'would-update'; revision: string; description: string }
  /** A new revision that a pause, the deploy window or min-age keeps from being deployed yet. */
  | { result: 'waiting'; revision: string; gate: GateKind; reason: string; eligibleAt?: string };

/**
 * A check's outcome with the one count of failed checks in a row (kept in the state, shown by
 * `status`), which the daemon's backoff, /healthz and /metrics read too.
 */
export type CheckReport = CheckOutcome & { failedChecksInARow: number };
