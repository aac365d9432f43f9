// status and check-config over every app of a conf.d directory: each app's own report under its
// name, and the app files that could not be used, named, with why.
import type { AgentContext } from '../core/agent-context.js';
import type { AgentApps, App } from '../settings/apps.js';
import { checkConfigCommand, statusCommand } from './commands.js';
import { worstExitCode } from '../base/errors.js';

type Print = (line: string) => void;

export async function statusOfApps(loaded: AgentApps, contextOf: (app: App) => AgentContext, json: boolean, print: Print): Promise<void> {
  if (json) {
    const apps: Record<string, unknown> = {};
    for (const app of loaded.apps) {
      const lines: string[] = [];
      await statusCommand(contextOf(app), true, (line) => lines.push(line));
      apps[app.name] = { config: app.settings.configPath, ...(JSON.parse(lines.join('\n')) as object) };
    }
    const skipped = Object.fromEntries(loaded.problems.map((problem) => [problem.name, { config: problem.file, error: problem.error.message, hint: problem.error.hint ?? null }]));
    return print(JSON.stringify({ directory: loaded.directory, apps, skipped }, null, 2));
  }
  for (const [index, app] of loaded.apps.entries()) {
    if (index > 0) print('');
    print(`app ${app.name} (${app.settings.configPath})`);
    await statusCommand(contextOf(app), false, (line) => print(`  ${line}`));
  }
  for (const problem of loaded.problems) {
    print('');
    print(`app ${problem.name} (${problem.file})`);
    print(`  SKIPPED: ${problem.error.message}`);
  }
}

/** Every app's parts, then the files that are no app; the exit code is the worst of them. */
export async function checkConfigOfApps(loaded: AgentApps, contextOf: (app: App) => AgentContext, print: Print): Promise<number> {
  print(`ok      apps: ${loaded.directory}: ${loaded.apps.map((app) => app.name).join(', ') || 'none usable'}`);
  const codes: number[] = [];
  for (const app of loaded.apps) {
    print('');
    print(`app ${app.name} (${app.settings.configPath})`);
    codes.push(await checkConfigCommand(contextOf(app), (line) => print(`  ${line}`)));
  }
  for (const problem of loaded.problems) {
    print('');
    print(`FAILED  app ${problem.name}: ${problem.error.message}`);
    codes.push(problem.error.exitCode);
  }
  if (loaded.problems.length > 0) process.stderr.write(`repo-deploy: check-config: ${loaded.problems.length} app ${loaded.problems.length === 1 ? 'file' : 'files'} cannot be used (${loaded.problems.map((problem) => problem.file).join(', ')})\n`);
  return worstExitCode(codes);
}
