// The contract every fetcher fulfils. A fetcher answers one question cheaply ("has the remote
// changed since what is live?") and, when it has, stages the new content into a directory.
import type { CacheLayout } from './cache-layout.js';
import type { Settings } from './settings.js';
import type { Logger } from '../base/log.js';
import type { ProgressSink } from '../base/progress.js';
import type { ManifestEntry } from './manifest-entry.js';

/** Whatever a fetcher needs to remember between checks (ETag, commit id...). Stored in the state file: never a secret. */
export type RemoteState = Record<string, string>;

export interface DeployedRevision {
  revision: string;
  /** What the fetcher remembered when this revision went live. */
  remoteState: RemoteState;
  /**
   * Whether that was this same remote. Shortcuts that name a location (an ETag, a file's
   * inode, a branch's commit) hold only then; content identities (a sha256, a tree id) always.
   */
  sameRemote: boolean;
}

/** `S`: the slice of the app's settings the fetcher reads (core/settings.ts); the check hands it all of them. */
export interface CheckContext<S = Settings> {
  settings: S;
  /** Where downloads and git mirrors go. */
  cache: CacheLayout;
  /**
   * What the remote is compared with: what is live, or a held-back revision (so it is not
   * downloaded again). Undefined on a first deploy or after the cache was deleted.
   */
  deployed: DeployedRevision | undefined;
  /** What is live, whatever is held back (for refuse-rewrites). */
  live: DeployedRevision | undefined;
  log: Logger;
  /** The environment git, ssh-keygen and gpg inherit from (the agent's, read once at start). */
  env: NodeJS.ProcessEnv;
  /** Aborted when the agent is stopping or the check's time limit has passed. */
  signal: AbortSignal;
  /** Where to report bytes downloaded and extracted (a terminal's progress bar), if anywhere. */
  progress?: ProgressSink;
}

export interface Unchanged {
  changed: false;
  /** Fresh remote state to remember (an updated Last-Modified, say), if any. */
  remoteState?: RemoteState;
}

export interface PendingRevision {
  changed: true;
  /** Identifies the content: commit (and tree) id, archive sha256, object version. */
  revision: string;
  /** One line for the log: what changed and where it came from. */
  description: string;
  /** To remember once this revision is live. */
  remoteState: RemoteState;
  /** Git: the commit's subject and author (the pusher's words, for the history; never trusted as text). */
  commit?: { subject: string; author: string };
  /**
   * Writes the release's files into `directory` (which exists and is empty); may return the
   * sha256 of files it wrote (by relative path), so the manifest need not read them back.
   */
  stage(directory: string): Promise<StagedFiles | void>;
  /** Removes temporary files (downloads); called whatever happened. */
  dispose(): Promise<void>;
  /**
   * For `plan` (git): the commits from `from` (excluded) to this revision, newest first, as
   * "abbrev subject (author)", at most `limit`; undefined when the history between is not known.
   */
  commitsSince?(from: string, limit: number): Promise<string[] | undefined>;
}

export interface StagedFiles {
  fileHashes: ReadonlyMap<string, string>;
  /**
   * Every entry the fetcher wrote, as the manifest lists them (in its order): given, the manifest
   * is written from them, without walking the release again.
   */
  entries?: Iterable<ManifestEntry>;
}

export type CheckResult = Unchanged | PendingRevision;

export interface Fetcher<S = Settings> {
  check(context: CheckContext<S>): Promise<CheckResult>;
}
