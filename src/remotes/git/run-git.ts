// Runs git for everything that touches the network (ls-remote, fetch, checkout of a partial
// clone, submodules) through the agent's process wrapper: git and its children (ssh,
// git-remote-https) lead their own process group, so git-timeout ends all of them. simple-git's
// timeout and abort signal only the git process itself (SIGINT to the child), which left ssh
// running. Credentials reach git through the environment, never its arguments.
import { inheritedEnvironment } from '../../base/child-environment.js';
import type { GitSettings } from '../../core/settings.js';
import { DeployError, fetchError, retryHint } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import { runProcess } from '../../base/process.js';
import { redact, registerSecret } from '../../base/redact.js';
import type { GitRemote } from '../../core/git-url.js';

export interface GitRunContext {
  settings: GitSettings;
  env: NodeJS.ProcessEnv;
  log: Logger;
  signal: AbortSignal;
  /** The remote as the operator wrote it, redacted, for messages. */
  displayRemote: string;
}

/** Single-quotes a value for the shell that runs GIT_SSH_COMMAND. */
const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/** The environment git runs with: no prompts, credentials for the remote's own server only, ssh options. */
export function gitEnvironment(remote: GitRemote, settings: GitSettings, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...inheritedEnvironment(base), GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', SSH_ASKPASS: 'true', LC_ALL: 'C' };
  const config: Array<[string, string]> = [];
  if (remote.credentials) {
    // Through git's credential protocol, scoped to the URL's own scheme, host and port: git asks
    // only when that server answers 401, and never for another server (a submodule elsewhere, a
    // redirect). An http.extraHeader would be sent to every server git talks to.
    registerSecret(remote.credentials.password);
    env.REPO_DEPLOY_GIT_USERNAME = remote.credentials.user;
    env.REPO_DEPLOY_GIT_PASSWORD = remote.credentials.password;
    const origin = new URL(remote.repository).origin;
    config.push(
      [`credential.${origin}.helper`, ''],
      [`credential.${origin}.helper`, `!f() { test "$1" = get && printf 'username=%s\\npassword=%s\\n' "$REPO_DEPLOY_GIT_USERNAME" "$REPO_DEPLOY_GIT_PASSWORD"; }; f`],
    );
  }
  if (settings.allowedSigners) config.push(['gpg.ssh.allowedSignersFile', settings.allowedSigners]);
  // The mirror is ours: no automatic gc during a deploy, no advice on detached heads. Without
  // maintenance.auto, every fetch and the checkout's lazy fetch still started a
  // `git maintenance run --auto` only to find gc.auto off (two processes a first deploy).
  config.push(['gc.auto', '0'], ['maintenance.auto', 'false'], ['advice.detachedHead', 'false']);
  // Local repositories (paths, file://) may carry file:// submodules, which git refuses by default.
  if (remote.repository.startsWith('/')) config.push(['protocol.file.allow', 'always']);
  config.forEach(([key, value], index) => {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  env.GIT_CONFIG_COUNT = String(config.length);

  const ssh = ['ssh', '-o', 'BatchMode=yes', '-o', `StrictHostKeyChecking=${settings.sshStrictHostKeyChecking}`];
  if (settings.sshKey) ssh.push('-i', shellQuote(settings.sshKey), '-o', 'IdentitiesOnly=yes');
  if (settings.sshKnownHosts) ssh.push('-o', `UserKnownHostsFile=${shellQuote(settings.sshKnownHosts)}`);
  env.GIT_SSH_COMMAND = ssh.join(' ');
  env.GIT_SSH_VARIANT = 'ssh';
  return env;
}

interface Diagnosis {
  pattern: RegExp;
  reason: string;
  hint: string;
}

// git's own words, mapped to what an operator should do. The first match wins.
const diagnoses: Diagnosis[] = [
  { pattern: /No space left on device|Disk quota exceeded/i, reason: 'no space left on the filesystem holding the cache', hint: 'free some space there; the live release is unchanged and the next check tries again' },
  { pattern: /Host key verification failed|No \S+ host key is known|REMOTE HOST IDENTIFICATION HAS CHANGED/i, reason: 'the SSH host key is unknown or has changed', hint: 'add the host to ssh-known-hosts (ssh-keyscan -p PORT HOST), or set ssh-strict-host-key-checking = accept-new for a first contact' },
  { pattern: /Authentication failed|could not read (Username|Password)|terminal prompts disabled|HTTP 401|The requested URL returned error: 40[13]|Permission denied \(publickey|Permission denied, please try again/i, reason: 'authentication failed', hint: 'check the user and token in the URL, or ssh-key and the server\'s authorized keys' },
  { pattern: /couldn't find remote ref|not our ref|unadvertised object|no such remote ref/i, reason: 'the branch, tag or commit was not found', hint: 'check the part after # in the remote' },
  { pattern: /does not appear to be a git repository|Repository not found|repository '.*' not found|not found: did you run git update-server-info|HTTP 404|returned error: 404|No such file or directory/i, reason: 'the repository was not found', hint: 'check the repository URL or path' },
  { pattern: /Could not resolve host|Failed to connect|Couldn't connect to server|Connection refused|Connection timed out|unable to connect|Network is unreachable|Connection reset|early EOF|the remote end hung up|RPC failed|Operation timed out|HTTP 5\d\d|returned error: 5\d\d/i, reason: 'the server could not be reached', hint: retryHint },
];

/** A git command that failed: `gitSaid` is git's own words, for a message that wraps them in its own. */
export class GitFailure extends DeployError {
  constructor(message: string, readonly gitSaid: string, hint: string) {
    super('fetch', message, { hint });
  }
}

/** Runs git with the remote's environment; resolves with its stdout lines, or throws a DeployError naming the cause. */
export async function runGit(args: string[], context: GitRunContext & { env: NodeJS.ProcessEnv; cwd?: string; operation: string }): Promise<string[]> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  context.log.debug(`git ${redact(args.join(' '))}`);
  const result = await runProcess('git', args, {
    env: context.env,
    cwd: context.cwd,
    timeoutMs: context.settings.gitTimeoutMs,
    killGraceMs: 2000,
    signal: context.signal,
    onLine: (line, stream) => {
      if (stream === 'stdout') stdout.push(line);
      else {
        stderr.push(line);
        context.log.debug(`git: ${line}`);
      }
    },
  });
  if (result.exitCode === 0) return stdout;
  throw describeGitFailure(context, result.timedOut, result.aborted, result.spawnError, stderr);
}

function describeGitFailure(
  context: GitRunContext & { operation: string },
  timedOut: boolean,
  aborted: boolean,
  spawnError: Error | undefined,
  stderr: string[],
): DeployError {
  const prefix = `git ${context.operation} of ${context.displayRemote} failed`;
  if (spawnError) {
    return fetchError(`${prefix}: git could not be started (${spawnError.message})`, { hint: 'git is not installed or not found in PATH' });
  }
  if (timedOut) {
    return fetchError(`${prefix}: it took longer than git-timeout (${context.settings.gitTimeoutMs / 1000} seconds) and was ended with its child processes`, {
      hint: retryHint,
    });
  }
  if (aborted) return fetchError(`${prefix}: the agent is stopping`);
  const text = stderr.join('\n');
  const detail = redact(stderr.filter((line) => /fatal|error|denied|failed|not found|refused/i.test(line)).slice(-2).join(' / ') || stderr.at(-1) || 'no message');
  for (const diagnosis of diagnoses) {
    if (diagnosis.pattern.test(text)) {
      return new GitFailure(`${prefix}: ${diagnosis.reason} (${detail})`, detail, diagnosis.hint);
    }
  }
  return new GitFailure(`${prefix}: ${detail}`, detail, `${retryHint} (-v shows all of git's output)`);
}
