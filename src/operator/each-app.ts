// Commands over the apps of one agent: which apps a command acts on (--app, or all of them where
// that is safe). A run over several exits with the worst of their codes (base/errors.ts).
import { usageError } from '../base/errors.js';
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
  const named = JSON.stringify(appName.slice(0, 64)); // as given, but never a screenful
  if (loaded.form === 'single') throw usageError(`--app ${named}: this agent has one app, from ${loaded.agent.configPath}, and no apps directory`, `drop --app, or add ${loaded.agent.configPath.replace(/[^/]*$/, '')}conf.d/NAME.cfg`);
  const app = loaded.apps.find((candidate) => candidate.name === appName);
  if (app) return [app];
  const problem = loaded.problems.find((candidate) => candidate.name === appName);
  if (problem) throw problem.error;
  throw usageError(`--app ${named}: no such app in ${loaded.directory} (${appNames(loaded)})`, `the apps are the NAME.cfg files of ${loaded.directory}`);
}

const appNames = (loaded: AgentApps) => [...loaded.apps.map((app) => app.name), ...loaded.problems.map((problem) => problem.name)].sort().join(', ');
