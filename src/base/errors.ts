import { readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';

// Every failure the agent reports carries a code that maps to a documented exit status,
// a message that names the thing and, where there is one, the fix. The kind alone decides what
// follows: the exit code, and for the daemon whether it backs off (a `fetch` failure does; every
// failure keeps the live release and is tried again at a later check).

/** Exit statuses of a one-shot run (`-f`) and of the commands; documented in the README. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  fetchFailed: 3,
  blockedByPreHook: 4,
  revertedAfterPostHook: 5,
  lockHeld: 6,
  heldBack: 7,
  verificationFailed: 8,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The one failure model: every kind of failure the agent reports, the exit code it ends a run
 * with, and what it covers. Outcomes of a check map onto the same codes (core/outcome-exit-codes.ts);
 * the README's exit-code table is generated from `exitCodeDocs` below (scripts/generate-docs.ts).
 */
export const failureKinds = {
  usage: { exitCode: ExitCode.usage, covers: 'a bad flag, config key or value, a bad live path layout, a path this user may not write' },
  fetch: { exitCode: ExitCode.fetchFailed, covers: 'the remote could not be read, or what it sent is unusable (a bad or hostile archive)' },
  'disk-full': { exitCode: ExitCode.fetchFailed, covers: 'no space left (or a quota reached) on the filesystem of the cache or the releases' },
  fleet: { exitCode: ExitCode.fetchFailed, covers: 'the fleet\'s Redis cannot be reached or holds what repo-deploy did not write, or the fleet vetoed an update before its swap' },
  'pre-hook': { exitCode: ExitCode.blockedByPreHook, covers: 'a pre-update hook refused the release' },
  'post-hook': { exitCode: ExitCode.revertedAfterPostHook, covers: 'a post-update hook or the health gate failed and the release was reverted' },
  lock: { exitCode: ExitCode.lockHeld, covers: 'another run holds the lock' },
  verification: { exitCode: ExitCode.verificationFailed, covers: 'a signature, checksum or ancestry check refused the content' },
  internal: { exitCode: ExitCode.internal, covers: 'a bug: anything not foreseen' },
} as const satisfies Record<string, { exitCode: ExitCodeValue; covers: string }>;

export type ErrorKind = keyof typeof failureKinds;

/**
 * The exit codes as operators read them, in the order a run over several apps ranks them (its
 * exit code is the first of its apps' codes in this list; 0 only when every app is fine).
 */
export const exitCodeDocs: ReadonlyArray<{ code: ExitCodeValue; short: string; meaning: string; whatToDo: string }> = [
  { code: ExitCode.internal, short: 'internal error', meaning: 'unexpected internal error', whatToDo: 'run again with `-v` and report the stack trace' },
  {
    code: ExitCode.usage,
    short: 'bad usage or config',
    meaning: 'bad usage or config (flag, key, value, remote form, live path is a real directory, an app file of `conf.d/` that cannot be used), or a cache or live path this user may not write',
    whatToDo: 'fix what the message names (for a permission: run as the path\'s owner, or set `cache` and `local` to paths you own)',
  },
  { code: ExitCode.verificationFailed, short: 'refused: a signature, checksum or ancestry check failed (or repo-deploy verify found a difference)', meaning: 'refused: a signature, checksum or ancestry check failed (also `repo-deploy verify` finding a difference)', whatToDo: 'the live release is unchanged; publish content your keys vouch for' },
  {
    code: ExitCode.revertedAfterPostHook,
    short: 'reverted after a post-update hook failed',
    meaning: 'reverted after a post-update hook (or the health gate) failed',
    whatToDo: 'the previous release is live again (a full disk does not prevent that: see [docs/full-disks-and-lost-state.md](docs/full-disks-and-lost-state.md)); the next check tries again',
  },
  { code: ExitCode.blockedByPreHook, short: 'blocked by a pre-update hook', meaning: 'blocked by a pre-update hook', whatToDo: 'the live release is unchanged; the next check tries again' },
  {
    code: ExitCode.fetchFailed,
    short: 'fetch failed',
    meaning: 'fetch failed: remote unreachable, HTTP error, HTML page, truncated or hostile archive, a download over `max-download-size`; no space left on a disk; the fleet\'s Redis unreachable (also: the state could not be saved, and the message says which release is live)',
    whatToDo: 'the live release is unchanged; the next check tries again',
  },
  { code: ExitCode.heldBack, short: 'the remote\'s revision is held back after max-attempts failures (see repo-deploy retry)', meaning: 'the remote\'s revision is held back: it failed its hooks `max-attempts` times in a row', whatToDo: 'fix the release (the remote changing is enough), or run `repo-deploy retry`' },
  { code: ExitCode.lockHeld, short: 'lock held by another run', meaning: 'the lock is held by another run (a daemon or another `-f`)', whatToDo: 'wait; the lock dies with the process that held it, so a crashed run never leaves one behind' },
  { code: ExitCode.ok, short: 'up to date or updated (or stopped by SIGTERM/SIGINT)', meaning: 'up to date, or updated; or a new revision waits (paused, outside `deploy-window`, younger than `min-age`) and the run says so; or a stop (SIGTERM, SIGINT) ended the run safely', whatToDo: '' },
];

/** The worst of several exit codes, by exitCodeDocs' order. */
export function worstExitCode(codes: readonly number[]): number {
  const rank = (code: number) => {
    const index = exitCodeDocs.findIndex((doc) => doc.code === code);
    return index === -1 ? -1 : index; // a code not in the table is the worst there is
  };
  return codes.reduce((worst, code) => (rank(code) < rank(worst) ? code : worst), ExitCode.ok);
}

export interface DeployErrorOptions {
  /** What the operator should do about it; appended to the message. */
  hint?: string;
  cause?: unknown;
  /** The server asked (Retry-After) not to be asked again for this long. */
  retryAfterMs?: number;
}

export class DeployError extends Error {
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(kind: ErrorKind, message: string, options: DeployErrorOptions = {}) {
    super(options.hint ? `${message}; ${options.hint}` : message, { cause: options.cause });
    this.name = 'DeployError';
    this.kind = kind;
    this.hint = options.hint;
    this.retryAfterMs = options.retryAfterMs;
  }

  get exitCode(): ExitCodeValue {
    return failureKinds[this.kind].exitCode;
  }
}

/**
 * The hint of a failed check that changed nothing: true of a check or an update, not of
 * check-config (which never deploys), so check-config leaves it out (`withoutRetryHint`).
 */
export const retryHint = 'the live release is unchanged; the next check tries again';

/** A message as check-config says it: without the retry hint (in any of its forms), which speaks of a check. */
export const withoutRetryHint = (message: string) => message.replace(/(;| and) (the live release is unchanged(;| and) )?the next check tries again/, '');

export const usageError = (message: string, hint?: string) => new DeployError('usage', message, { hint });
export const fetchError = (message: string, options?: DeployErrorOptions) => new DeployError('fetch', message, options);

const unchangedHint = 'free some space there; the live release is unchanged and the next check tries again';

/**
 * A full disk (or quota), said plainly: which filesystem, and by default that nothing live
 * changed; `hint` replaces that where it would not be true (after the swap, the caller says what is live).
 */
export function noSpaceError(error: unknown, needed?: string, hint = unchangedHint): DeployError | undefined {
  const code = systemErrorCode(error);
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  const path = typeof error === 'object' && error !== null && 'path' in error && typeof error.path === 'string' ? error.path : undefined;
  return noSpaceLeft(path ?? 'the cache or the releases', needed, error, hint);
}

/** "No space left" for a path, whether a write failed (ENOSPC) or a check found too little room. */
export function noSpaceLeft(where: string, detail?: string, cause?: unknown, hint = unchangedHint): DeployError {
  return new DeployError('disk-full', `no space left on the filesystem holding ${where}${detail ? `: ${detail}` : ''}`, { hint, cause });
}

const verbOfSyscall: Record<string, string> = { open: 'open', mkdir: 'create', rename: 'rename', unlink: 'remove', rmdir: 'remove', symlink: 'create', scandir: 'list', chmod: 'change the mode of' };

/**
 * A path this user may not write (or read), said as the operator needs it: who the agent runs as,
 * who owns the path (or its nearest existing directory), and the two ways out. A usage error
 * (exit 2): nothing was changed, and the next run fails the same way until someone acts.
 */
export function permissionError(error: unknown): DeployError | undefined {
  const code = systemErrorCode(error);
  if (code !== 'EACCES' && code !== 'EPERM') return undefined;
  const path = typeof error === 'object' && error !== null && 'path' in error && typeof error.path === 'string' ? error.path : undefined;
  if (path === undefined) return undefined;
  const syscall = typeof error === 'object' && error !== null && 'syscall' in error && typeof error.syscall === 'string' ? error.syscall : 'open';
  const owner = nearestOwner(path);
  const where = owner === undefined ? '' : owner.path === path ? ` (owned by ${owner.user}, mode ${owner.mode})` : `: ${owner.path} is owned by ${owner.user}, mode ${owner.mode}`;
  const me = currentUserName();
  return new DeployError('usage', `permission denied: repo-deploy runs as ${me} and cannot ${verbOfSyscall[syscall] ?? syscall} ${path}${where}`, {
    hint: `run it as ${owner ? `${owner.user}, who owns ${owner.path}` : 'the owner'}, or set cache and local to paths ${me} can write`,
    cause: error,
  });
}

function nearestOwner(path: string): { path: string; user: string; mode: string } | undefined {
  for (let candidate = path; ; candidate = dirname(candidate)) {
    try {
      const info = statSync(candidate);
      return { path: candidate, user: userNameOf(info.uid), mode: (info.mode & 0o7777).toString(8) };
    } catch {
      if (candidate === dirname(candidate)) return undefined;
    }
  }
}

function currentUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** The name /etc/passwd gives a uid (an error path: read once, synchronously, when needed). */
function userNameOf(uid: number): string {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.split(':')[2] === String(uid));
    if (line) return line.split(':')[0]!;
  } catch {
    // no passwd file: the number is all there is
  }
  return `uid ${uid}`;
}

/** A failure of the host (a full disk, a path this user may not write) said plainly, or undefined. */
export function hostError(error: unknown): DeployError | undefined {
  return noSpaceError(error) ?? permissionError(error);
}

/** The exit status for anything thrown: ours carry one, anything else is an internal error. */
export function exitCodeOf(error: unknown): ExitCodeValue {
  if (error instanceof DeployError) return error.exitCode;
  return hostError(error)?.exitCode ?? ExitCode.internal;
}

/** A message for any thrown value, for logs and the terminal. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Node's system errors carry a code such as ENOENT; this reads it without a cast at every call site. */
export function systemErrorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}
