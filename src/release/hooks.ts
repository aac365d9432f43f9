// Runs a hook directory run-parts style: regular executable files in byte order of their
// names, skipping names that start with "." or end in "~" and the leftovers of package managers
// and editors; the first failure stops the phase. Unlike run-parts, any other name runs
// (`restart.sh` did under the original tool), so an upgrade's `50-reload.dpkg-old` beside
// `50-reload` is what must not run, not every name with a dot.
import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployError, systemErrorCode, usageError, type ErrorKind } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { inheritedEnvironment } from '../base/child-environment.js';
import { runProcess, type ProcessResult } from '../base/process.js';

export type HookPhase = 'pre-update' | 'post-update' | 'revert' | 'rollback';

export interface HookEnvironment {
  currentConfig: string;
  previousConfig: string;
  revision: string;
  previousRevision: string;
}

export interface RunHooksOptions {
  directory: string;
  phase: HookPhase;
  hookEnvironment: HookEnvironment;
  baseEnv: NodeJS.ProcessEnv;
  timeoutMs: number;
  killGraceMs?: number;
  log: Logger;
  signal?: AbortSignal;
  /** How long a running hook may go on once `signal` aborts (the agent is stopping). */
  stopGraceMs?: number;
  /** What a failure counts as: a pre-update hook blocks, a post-update hook reverts. */
  failureKind: ErrorKind;
  /** Told each hook's process group as it starts, so a crash of the agent can be cleaned up after. */
  onHookStarted?(hook: string, pid: number): void;
}

/** A hook that failed: which one, and how (exit code, signal, timeout), with its last output. */
export class HookFailedError extends DeployError {
  constructor(
    readonly hook: string,
    readonly phase: HookPhase,
    readonly result: ProcessResult,
    kind: ErrorKind,
    timeoutMs: number,
  ) {
    super(kind, `${phase} hook ${hook} ${describeFailure(result, timeoutMs)}${lastLine(result)}`);
    this.name = 'HookFailedError';
  }
}

function describeFailure(result: ProcessResult, timeoutMs: number): string {
  if (result.spawnError) return `could not be started (${result.spawnError.message}); check its #! line and permissions`;
  if (result.timedOut) return `timed out after ${timeoutMs / 1000} seconds and was killed with its process group`;
  if (result.aborted) return 'was ended with its process group because the agent is stopping';
  if (result.signal) return `was killed by signal ${result.signal}`;
  return `failed with exit code ${result.exitCode}`;
}

function lastLine(result: ProcessResult): string {
  const last = result.outputTail.at(-1);
  return last ? `: ${last}` : '';
}

// Backups and package-manager leftovers: *.dpkg-old, *.dpkg-dist, *.dpkg-new, *.rpmsave,
// *.rpmnew, *.ucf-old (and other *.ucf-*), *.bak, *.orig, *.swp, #name#, *.disabled.
const leftoverName = /(\.(dpkg-old|dpkg-dist|dpkg-new|rpmsave|rpmnew|bak|orig|swp|disabled)|\.ucf-[a-z]+)$|^#.*#$/;

/** Whether a hook file name is one the agent never runs (and why, for the log). */
export function skippedHookName(name: string): string | undefined {
  if (name.startsWith('.')) return 'a hidden file';
  if (name.endsWith('~')) return 'an editor backup';
  if (leftoverName.test(name)) return 'a backup or package-manager leftover';
  return undefined;
}

// Each skipped executable is said once per process, not at every check.
const reportedSkips = new Set<string>();

/**
 * The hooks a directory holds, in the order they run. A missing directory holds none. A file
 * that is not executable is a gate an operator believes in but that would never run: `strict`
 * (at start and in check-config) refuses it; while running, it is skipped with an ERROR line.
 * `NAME.disabled` is the way to keep a hook off.
 */
export async function listHooks(directory: string, log?: Logger, { strict = false }: { strict?: boolean } = {}): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    const code = systemErrorCode(error);
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw usageError(`the hook directory ${directory} is a file, not a directory`, `give a directory of hooks (mkdir -p ${directory}.d and move the script there)`);
    throw new DeployError('usage', `cannot read hook directory ${directory}: ${code ?? String(error)}`);
  }
  const candidates = names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const hooks: string[] = [];
  for (const name of candidates) {
    const path = join(directory, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) continue;
    const skipped = skippedHookName(name);
    if (skipped) {
      if (log && info.mode & 0o111 && !reportedSkips.has(path)) {
        reportedSkips.add(path);
        log.info(`hook ${path} is skipped: ${skipped} is never run`);
      }
      continue;
    }
    try {
      await access(path, constants.X_OK);
      hooks.push(name);
    } catch {
      const fix = `chmod +x ${path} to run it, or rename it to ${name}.disabled to keep it off`;
      if (strict) throw usageError(`the hook ${path} is not executable, so it would never run`, fix);
      log?.error(`the hook ${path} is not executable and does NOT run; ${fix}`);
    }
  }
  return hooks;
}

/**
 * Before a run or the daemon starts: each hook directory is a directory (or a missing default)
 * and every hook in it can run. A missing default directory means no hooks: said once at info
 * level by the daemon, at debug level by -f (a cron line should be quiet when nothing happens).
 */
export async function checkHookDirectories(settings: { preHooks: string; postHooks: string }, log: Logger, { once }: { once: boolean }): Promise<void> {
  for (const [phase, directory] of [['pre-update', settings.preHooks], ['post-update', settings.postHooks]] as const) {
    if (!(await stat(directory).then(() => true, () => false))) {
      const line = `no ${phase} hooks: the default directory ${directory} does not exist`;
      if (once) log.debug(line);
      else log.info(line);
      continue;
    }
    await listHooks(directory, log, { strict: true });
  }
}

/** What a hook (or the health check, which runs like one) sees: the agent's environment, secrets removed, and the release's variables. */
export function hookProcessEnvironment(baseEnv: NodeJS.ProcessEnv, hookEnvironment: HookEnvironment, phase: HookPhase | 'health-check'): NodeJS.ProcessEnv {
  return {
    ...inheritedEnvironment(baseEnv),
    CURRENT_CONFIG: hookEnvironment.currentConfig,
    PREVIOUS_CONFIG: hookEnvironment.previousConfig,
    REPO_DEPLOY_PHASE: phase,
    REPO_DEPLOY_REVISION: hookEnvironment.revision,
    REPO_DEPLOY_PREVIOUS_REVISION: hookEnvironment.previousRevision,
    // The app of conf.d/ the hook runs for (cli.ts puts it in each app's environment).
    ...(baseEnv.REPO_DEPLOY_APP ? { REPO_DEPLOY_APP: baseEnv.REPO_DEPLOY_APP } : {}),
  };
}

export async function runHooks(options: RunHooksOptions): Promise<void> {
  const { directory, phase, hookEnvironment, log } = options;
  const hooks = await listHooks(directory, log);
  if (hooks.length === 0) {
    log.debug(`no ${phase} hooks in ${directory}`);
    return;
  }
  const env = hookProcessEnvironment(options.baseEnv, hookEnvironment, phase);
  for (const name of hooks) {
    log.info(`running ${phase} hook ${name}`);
    const started = Date.now();
    const output = new OutputBudget();
    const result = await runProcess(join(directory, name), [], {
      env,
      timeoutMs: options.timeoutMs,
      killGraceMs: options.killGraceMs,
      signal: options.signal,
      abortGraceMs: options.stopGraceMs,
      onSpawn: (pid) => options.onHookStarted?.(name, pid),
      onLine: (line, stream) => {
        if (output.admit(line)) (stream === 'stderr' ? log.warn : log.info)(`[${name}] ${line}`);
      },
    });
    if (output.droppedLines > 0) log.warn(`[${name}] ${output.droppedLines} more lines (${output.droppedBytes} bytes) of output were not logged: a hook logs at most ${OutputBudget.bytes} bytes a run`);
    if (result.exitCode !== 0) throw new HookFailedError(name, phase, result, options.failureKind, options.timeoutMs);
    log.debug(`${phase} hook ${name} succeeded in ${Date.now() - started} ms`);
  }
}

/** Said once at start: a default hook directory that does not exist means no hooks of that phase. */

/** How much of one hook run's output reaches the log: a hook printing 100 MB must not write 100 MB of log. */
class OutputBudget {
  static readonly bytes = 1 << 20;
  private used = 0;
  droppedLines = 0;
  droppedBytes = 0;

  admit(line: string): boolean {
    if (this.used + line.length <= OutputBudget.bytes) {
      this.used += line.length;
      return true;
    }
    this.droppedLines++;
    this.droppedBytes += line.length + 1;
    return false;
  }
}
