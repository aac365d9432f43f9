// Commands over the apps of one agent: which apps a command acts on (--app, or all of them where
// that is safe), and one exit code for a run over several.
import { ExitCode, usageError } from '../base/errors.js';
import type { AgentApps, App } from '../settings/apps.js';

/**
 * The apps a command acts on. `--app NAME` names one; without it a command that reads (status,
 * -f, check-config) takes every app, and one that changes an app's state (rollback, pause, …)
 * must be told which when there are several.
 */
export function selectApps(loaded: AgentApps, appName: string | undefined, command: string, { everyApp }: { everyApp: boolean }): App[] {
  if (appName === undefined) {
    if (everyApp || loaded.apps.length + loaded.problems.length <= 1) return loaded.apps;
    throw usageError(`${command} acts on one app, and this agent has ${loaded.apps.length + loaded.problems.length} (${appNames(loaded)})`, `name one: repo-deploy ${command} --app ${loaded.apps[0]?.name ?? loaded.problems[0]?.name}`);
  }
  if (loaded.form === 'single') throw usageError(`--app ${appName}: this agent has one app, from ${loaded.agent.configPath}, and no apps directory`, `drop --app, or add ${loaded.agent.configPath.replace(/[^/]*$/, '')}conf.d/${appName}.cfg`);
  const app = loaded.apps.find((candidate) => candidate.name === appName);
  if (app) return [app];
  const problem = loaded.problems.find((candidate) => candidate.name === appName);
  if (problem) throw problem.error;
  throw usageError(`--app ${appName}: no such app in ${loaded.directory} (${appNames(loaded)})`, `the apps are the NAME.cfg files of ${loaded.directory}`);
}

const appNames = (loaded: AgentApps) => [...loaded.apps.map((app) => app.name), ...loaded.problems.map((problem) => problem.name)].sort().join(', ');

/**
 * The exit code of a run over several apps: the worst of theirs, in the order an operator must
 * act on them: an internal error, a bad config, a refused signature, a revert, a blocked update,
 * a failed fetch, a held-back revision, a lock held by another run; 0 only when every app is fine.
 */
const severity: number[] = [ExitCode.internal, ExitCode.usage, ExitCode.verificationFailed, ExitCode.revertedAfterPostHook, ExitCode.blockedByPreHook, ExitCode.fetchFailed, ExitCode.heldBack, ExitCode.lockHeld];

export function worstExitCode(codes: number[]): number {
  const rank = (code: number) => (code === ExitCode.ok ? severity.length : severity.indexOf(code) === -1 ? -1 : severity.indexOf(code));
  return codes.reduce((worst, code) => (rank(code) < rank(worst) ? code : worst), ExitCode.ok);
}
