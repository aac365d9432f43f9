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

export type ErrorKind =
  | 'usage' // bad flag, bad config key or value, bad live path layout
  | 'fetch' // the remote could not be read, or what it sent is unusable (bad archive)
  | 'pre-hook' // a pre-update hook refused the release
  | 'post-hook' // a post-update hook failed and the release was reverted
  | 'lock' // another run holds the lock
  | 'verification' // a signature, checksum or ancestry check refused the content
  | 'internal';

const exitCodeOfKind: Record<ErrorKind, ExitCodeValue> = {
  usage: ExitCode.usage,
  fetch: ExitCode.fetchFailed,
  'pre-hook': ExitCode.blockedByPreHook,
  'post-hook': ExitCode.revertedAfterPostHook,
  lock: ExitCode.lockHeld,
  verification: ExitCode.verificationFailed,
  internal: ExitCode.internal,
};

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
    return exitCodeOfKind[this.kind];
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
  return new DeployError('fetch', `no space left on the filesystem holding ${where}${detail ? `: ${detail}` : ''}`, { hint, cause });
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
