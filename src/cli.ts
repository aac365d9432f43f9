#!/usr/bin/env node
// The command line: parses, calls the core, prints err.message (the stack only with -v) and
// sets the exit code. Flags keep the meaning they had in the original repo-deploy 1.0.8.
// First of all: a stop from the first instant exits 0 (see stop-signals.ts).
import { stopEndsTheProcess, stopRequested, stopSignalName } from './base/stop-signals.js';
import { setFlagsFromString } from 'node:v8';
// yargs is loaded when main runs (a tenth of a second of start-up): a static import would hold
// back the stop handlers above, as every static import is loaded before any module runs.
import type Yargs from 'yargs';
import { defaultConfigPath, requireRemote } from './settings/config.js';
import type { AgentApps, App } from './settings/apps.js';
import { DeployError, ExitCode, exitCodeDocs, exitCodeOf, hostError, messageOf, usageError, worstExitCode } from './base/errors.js';
import { shortRevision } from './release/failures.js';
import { createLogger, oneLine, withFields, type Logger } from './base/log.js';
import { redact } from './base/redact.js';
import type { AgentContext } from './core/agent-context.js';
import { outcomeExitCode } from './core/outcome-exit-codes.js';
import type { TerminalProgress } from './base/progress.js';
import { agentVersion } from './base/version.js';
import { defaultSchedule } from './core/settings-schema.js';
import { delayPoint } from './base/test-pause.js';


const exitCodeHelp = `Exit codes: ${[...exitCodeDocs].sort((a, b) => a.code - b.code).map((doc) => `${doc.code} ${doc.short}`).join(', ')}.`;

type Command = 'run' | 'status' | 'releases' | 'rollback' | 'retry' | 'check-config' | 'verify' | 'adopt' | 'pause' | 'resume' | 'fleet' | 'history' | 'plan';

function parser(argv: string[], yargs: typeof Yargs) {
  return yargs(argv)
    .scriptName('repo-deploy')
    .usage('$0 [options]\n$0 <command> [options]\n\nPolls one remote, stages each new version as a release, runs the hooks and swaps the live path atomically.')
    .command('$0', 'Run the agent: a daemon on the schedule, or one check with -f', (command) =>
      command
        // The agent's own flags: only here, so `rollback --help` does not offer -f.
        .option('fetch', { alias: 'f', type: 'boolean', default: false, describe: 'Check once, deploy if changed, exit' })
        .option('ignore-window', { type: 'boolean', default: false, describe: 'With -f: deploy now even outside deploy-window (an operator\'s override; a pause still holds)' })
        .example('$0 -f -r https://ci.example.com/app.zip -l /srv/app/current', 'Deploy once from an HTTP zip')
        .example('$0 -f -r git@github.com:org/app.git/web#main', 'Deploy the web/ directory of a branch once')
        .example('$0 -c /etc/repo-deploy/repo-deploy.cfg', 'Run as a daemon with a config file'),
    )
    .command('status', 'Show the live release, the last check and its result, held-back revisions', (command) =>
      command
        .option('json', { type: 'boolean', default: false, describe: 'Print JSON' })
        .example('$0 status', 'What is live and how the last check went')
        .example('$0 status --json', 'For a monitoring script'),
    )
    .command('releases', 'List the releases on disk with revision, time and result', (command) =>
      command.option('json', { type: 'boolean', default: false, describe: 'Print JSON' }).example('$0 releases -c /etc/repo-deploy/repo-deploy.cfg', 'The releases of the configured agent'),
    )
    .command('rollback [release]', 'Swap back to the previous (or the named) release, running the hooks in phase "rollback"', (command) =>
      command
        .positional('release', { type: 'string', describe: 'A release id from repo-deploy releases' })
        .option('force', { type: 'boolean', default: false, describe: 'Roll back even to a release that differs from its manifest' })
        .example('$0 rollback', 'Back to the release before the live one')
        .example('$0 rollback 20261122T060757Z-180054318019', 'Back to a named release'),
    )
    .command('retry', 'Try a held-back revision again at the next check (clears failure counts)', (command) =>
      command.example('$0 retry && systemctl reload repo-deploy', 'Try again now (the reload sends SIGHUP: check now)'),
    )
    .command('check-config', 'Validate the config and reach the remote without deploying', (command) =>
      command.example('$0 check-config -c /etc/repo-deploy/repo-deploy.cfg', 'Before enabling the service'),
    )
    .command('adopt', 'Make the plain directory at the live path (left by the Python tool) the first release, so a failed first deploy can revert to it', (command) =>
      command.example('$0 adopt -l /var/deploy/current', 'Move /var/deploy/current into releases/ and link it'),
    )
    .command('pause', 'Stop deploying on this server (checks go on) until repo-deploy resume; kept across restarts and applies to -f runs', (command) =>
      command
        .option('reason', { type: 'string', describe: 'Why, shown by status' })
        .example('$0 pause --reason "incident 4711"', 'Hold this server at its live release'),
    )
    .command('resume', 'Deploy again after repo-deploy pause (what waited is deployed at the next check)', (command) =>
      command.example('$0 resume && systemctl reload repo-deploy', 'Resume and check now (the reload sends SIGHUP)'),
    )
    .command('fleet <action> [revision]', 'The fleet (fleet-redis): status [--json], halt [--reason TEXT] (no server starts an update), resume [REVISION], init (accept the fleet after its Redis lost its data), configure (this config\'s remote and rollout settings become the fleet\'s), promote [REVISION] (canary-promote = manual: the rest follows the canaries), rollback REVISION (every server goes back to it)', (command) =>
      command
        .positional('action', { choices: ['status', 'halt', 'resume', 'init', 'configure', 'promote', 'rollback'] as const, describe: 'What to do' })
        .positional('revision', { type: 'string', describe: 'With resume: a revision halted after failures, to roll out again; with promote: the revision to promote (default: the one rolling out)' })
        .option('json', { type: 'boolean', default: false, describe: 'With status: print JSON' })
        .option('reason', { type: 'string', describe: 'With halt: why, shown by fleet status' })
        .example('$0 fleet status', 'Every member, and how the rollout goes')
        .example('$0 fleet halt --reason "errors in eu-west"', 'Stop the rollout everywhere'),
    )
    .command('plan', 'What the next check would do, changing nothing: the revision from and to, the commits between (git), the files added, changed and removed with sizes, the hooks that would run, and whether a gate (pause, window, min-age, a hold) keeps it back', (command) =>
      command
        .option('json', { type: 'boolean', default: false, describe: 'Print the plan as JSON (every file)' })
        .example('$0 plan', 'Before a deploy window opens: what will change'),
    )
    .command('history', 'The deploy history: every update, rollback, pause and recovery, who asked and what changed; --verify proves nothing was edited or removed (exit 8 if so)', (command) =>
      command
        .option('json', { type: 'boolean', default: false, describe: 'Print one JSON entry per line' })
        .option('since', { type: 'string', describe: 'Only entries since a time (2026-12-03T04:00Z) or a duration back (30m, 2h, 7d)' })
        .option('limit', { type: 'number', describe: 'Only the last N entries' })
        .option('verify', { type: 'boolean', default: false, describe: 'Check the hash chain instead of printing' })
        .example('$0 history --since 12h', 'What happened overnight')
        .example('$0 history --verify', 'Prove no entry was edited or removed'),
    )
    .command('verify', 'Check the live tree against the manifest made when it was deployed (exit 8 on any difference)', (command) =>
      command.example('$0 verify', 'Prove the live tree is what was deployed'),
    )
    .option('config', { alias: 'c', type: 'string', global: true, describe: `Config file [default: ${defaultConfigPath}]` })
    .option('cache', { type: 'string', global: true, describe: 'Cache/work directory [default: /var/cache/repo-deploy]' })
    .option('pre-hooks', { type: 'string', global: true, describe: 'Pre-update hook directory [default: /etc/repo-deploy/pre-update.d]' })
    .option('post-hooks', { type: 'string', global: true, describe: 'Post-update hook directory [default: /etc/repo-deploy/post-update.d]' })
    .option('remote', { alias: 'r', type: 'string', global: true, describe: 'The remote (git URL, http(s)/s3 zip, local zip)' })
    .option('local', { alias: 'l', type: 'string', global: true, describe: 'The live path [default: /var/deploy/current]' })
    .option('app', { type: 'string', global: true, describe: 'The app of conf.d/ a command acts on (NAME of NAME.cfg); -f and status without it: every app' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, global: true, describe: 'Debug logging' })
    // --pre-hook must be refused as "pre-hook", not as "pre-hook, preHook": the code reads the dashed names.
    .parserConfiguration({ 'camel-case-expansion': false })
    .epilog(exitCodeHelp)
    .version(agentVersion)
    .strict()
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false);
}

const commandNames = ['status', 'releases', 'rollback', 'retry', 'check-config', 'adopt', 'pause', 'resume', 'fleet', 'verify', 'history', 'plan'];
const flagNames = ['app', 'config', 'cache', 'pre-hooks', 'post-hooks', 'remote', 'local', 'fetch', 'ignore-window', 'verbose', 'json', 'force', 'reason', 'since', 'limit', 'verify', 'help', 'version'];

/**
 * yargs' "Unknown argument: pre-hook" said as an operator needs it: which flag or command was not
 * known, and the one closest that is ("did you mean --pre-hooks?").
 */
async function withSuggestion(message: string, argv: string[]): Promise<string> {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (!unknown) return message;
  const { closestKey } = await import('./settings/config-file.js');
  return unknown[1]!
    .split(', ')
    .map((name) => {
      const asFlag = argv.some((argument) => argument === `--${name}` || argument.startsWith(`--${name}=`) || argument === `-${name}`);
      if (asFlag) {
        const suggestion = closestKey(name, flagNames);
        return `unknown option ${name.length === 1 ? '-' : '--'}${name}${suggestion ? `; did you mean --${suggestion}?` : ''}`;
      }
      const suggestion = closestKey(name, commandNames);
      return `unknown command "${name}"${suggestion ? `; did you mean "${suggestion}"?` : ''}`;
    })
    .join('; ');
}

/**
 * `repo-deploy status | head -1`: once the reader has gone, the rest of the output has nowhere to
 * go, and that is no error: output ends quietly, with the command's own exit code.
 */
function endQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(process.exitCode ?? 0);
    });
  }
}

async function main(): Promise<number> {
  endQuietlyOnClosedPipe();
  await delayPoint('start');
  const [{ default: yargs }, { hideBin }] = await Promise.all([import('yargs'), import('yargs/helpers')]);
  const argv = hideBin(process.argv);
  let usageFailure: string | undefined;
  const parsed = await parser(argv, yargs)
    .fail((message, error) => {
      usageFailure = message ?? messageOf(error);
    })
    .parseAsync();
  if (usageFailure !== undefined) {
    process.stderr.write(`repo-deploy: ${await withSuggestion(usageFailure, argv)}; see repo-deploy --help\n`);
    return ExitCode.usage;
  }
  if (parsed.help || parsed.version) return ExitCode.ok;
  const command = (String(parsed._[0] ?? 'run') as Command);
  if (command !== 'run') stopEndsTheProcess();
  const verbose = parsed.verbose;
  if (parsed['ignore-window'] && (command !== 'run' || !parsed.fetch)) {
    process.stderr.write('repo-deploy: --ignore-window goes with -f (one check now); run: repo-deploy -f --ignore-window\n');
    return ExitCode.usage;
  }

  const { loadApps } = await import('./settings/apps.js');
  const loadOptions = {
    flags: {
      config: parsed.config,
      cache: parsed.cache,
      preHooks: parsed['pre-hooks'],
      postHooks: parsed['post-hooks'],
      remote: parsed.remote,
      local: parsed.local,
      verbose: parsed.verbose,
    },
    env: process.env,
    cwd: process.cwd(),
    collectPathProblems: command === 'check-config',
  };
  let loaded: AgentApps;
  try {
    loaded = await loadApps(loadOptions);
  } catch (error) {
    return reportError(error, verbose);
  }
  const { agent: settings } = loaded;
  // A log line during a -f run on a terminal goes above its progress bar, never onto its line.
  const log = createLogger({ verbose: settings.verbose, format: settings.logFormat, write: (line) => progressBar?.writeAbove(line) || process.stderr.write(line + '\n') });
  routeProcessWarnings(log);
  for (const warning of settings.warnings) log.warn(warning);
  const context: AgentContext = { settings, log, env: process.env, now: () => new Date(), signal: stopRequested, lockWaitMs: 15_000 };
  /** One app's context: its settings, and in the directory form its name on every log line. */
  const contextsOf = (apps: AgentApps) => new Map(apps.apps.map((app) => {
    const appLog = apps.form === 'directory' ? withFields(log, { app: app.name }) : log;
    if (apps.form === 'directory') for (const warning of app.settings.warnings) appLog.warn(warning);
    // A hook shared by several apps (the main file's hook directories) is told which app it runs for.
    // One inherited from a parent agent's hook is not this app's.
    const agentEnv = Object.fromEntries(Object.entries(context.env).filter(([name]) => name !== 'REPO_DEPLOY_APP'));
    const env = apps.form === 'directory' ? { ...agentEnv, REPO_DEPLOY_APP: app.name } : agentEnv;
    return [app.name, { ...context, settings: app.settings, log: appLog, env }] as const;
  }));
  const appContexts = contextsOf(loaded);
  const contextOf = (app: App) => appContexts.get(app.name)!;
  const print = (line: string) => process.stdout.write(line + '\n');
  const appName = parsed.app as string | undefined;

  try {
    const { selectApps } = await import('./operator/each-app.js');
    if (command === 'status' && loaded.form === 'directory' && appName === undefined) {
      await (await import('./operator/status-of-apps.js')).statusOfApps(loaded, contextOf, Boolean(parsed.json), print);
      return ExitCode.ok;
    }
    if (command === 'check-config' && loaded.form === 'directory' && appName === undefined) {
      return await (await import('./operator/status-of-apps.js')).checkConfigOfApps(loaded, contextOf, print);
    }
    if (command !== 'run') {
      const [app] = selectApps(loaded, appName, command, { everyApp: false });
      if (!app) throw usageError(`${command}: no app can be used`, 'repo-deploy check-config says why');
      const appContext = contextOf(app);
      try {
        return (await runCommand(command, parsed, appContext, print)) ?? ExitCode.ok;
      } finally {
        // What the command told (a rollback, a pause, …) is sent now, within notify-timeout.
        if (appContext.settings.notify.length > 0) await (await import('./notify/notifier.js')).deliverBeforeExit(appContext);
      }
    }
    /**
     * The apps ready to run, and the exit codes of those that are not: an app file that cannot be
     * used, or (in the directory form) an app whose schedule or hooks are refused, is reported
     * and skipped; the one app of the original form stops the run as before.
     */
    const readyApps = async (apps: AgentApps, contexts: typeof appContexts) => {
      const selected = selectApps(apps, appName, '-f', { everyApp: true });
      const skipped: number[] = [];
      for (const problem of appName === undefined ? apps.problems : []) {
        log.error(`app ${problem.name} skipped: ${problem.error.message}`, { app: problem.name });
        skipped.push(problem.error.exitCode);
      }
      const ready: Array<{ name: string | undefined; context: AgentContext }> = [];
      for (const app of selected) {
        const appContext = contexts.get(app.name)!;
        try {
          await appReady(appContext, Boolean(parsed.fetch));
          ready.push({ name: apps.form === 'directory' ? app.name : undefined, context: appContext });
        } catch (error) {
          if (apps.form === 'single') throw error;
          log.error(`app ${app.name} skipped: ${messageOf(error)}`, { app: app.name });
          skipped.push(exitCodeOf(error));
        }
      }
      if (ready.length === 0) throw skipped.length ? usageError(`no app of ${apps.directory} can be used`, 'repo-deploy check-config says why for each') : usageError('no app to run');
      return { ready, skipped };
    };
    const { ready, skipped } = await readyApps(loaded, appContexts);
    if (stopRequested.aborted) {
      log.info(`${stopSignalName()} received while starting: stopping before the first check; nothing was changed`);
      return ExitCode.ok;
    }
    if (!parsed.fetch) {
      const { runDaemon } = await import('./daemon/daemon.js');
      // The directory form: SIGHUP reads the apps again (a bad main file keeps them as they were).
      const reloadApps = loaded.form === 'directory'
        ? async () => {
            const again = await loadApps(loadOptions);
            return again.form === 'directory' ? (await readyApps(again, contextsOf(again))).ready : undefined;
          }
        : undefined;
      await runDaemon({ agent: context, apps: ready, stopRequested, reloadApps });
      return ExitCode.ok;
    }
    // Several apps check at once, each in its own cache and lock: one slow remote delays no other.
    // A progress bar only for one.
    const codes = await Promise.all(ready.map((app) => fetchOnce({ ...app.context, ignoreWindow: Boolean(parsed['ignore-window']) }, app.context.log, { progressBar: ready.length === 1 })));
    return worstExitCode([...codes, ...skipped]);
  } catch (error) {
    return reportError(error, verbose);
  }
}

/** What an app needs before its first check: a remote, a schedule that parses, hook directories it may run. */
async function appReady({ settings, log }: AgentContext, once: boolean): Promise<void> {
  requireRemote(settings); // before any disk work (its form was checked with the other settings)
  // Checked in -f runs too: the cron line that works today must not hide a daemon that cannot
  // start. The built-in default is known to parse, and the parser (cron-parser with luxon) cost
  // an idle -f run 75 ms and 16 MiB to load.
  if (settings.schedule !== defaultSchedule) await (await import('./settings/schedule.js')).validateSchedule(settings.schedule);
  await (await import('./release/hooks.js')).checkHookDirectories(settings, log, { once });
}

type Parsed = Awaited<ReturnType<ReturnType<typeof parser>['parseAsync']>>;

/** The commands beside the agent's run; undefined for the run itself. */
async function runCommand(command: Command, parsed: Parsed, context: AgentContext, print: (line: string) => void): Promise<number | undefined> {
  const commands = await import('./operator/commands.js');
  switch (command) {
    case 'status':
      await commands.statusCommand(context, Boolean(parsed.json), print);
      return ExitCode.ok;
    case 'releases':
      await commands.releasesCommand(context, Boolean(parsed.json), print);
      return ExitCode.ok;
    case 'rollback':
      await commands.rollbackCommand(context, parsed.release as string | undefined, Boolean(parsed.force), print);
      return ExitCode.ok;
    case 'retry':
      await commands.retryCommand(context, print);
      return ExitCode.ok;
    case 'check-config':
      return commands.checkConfigCommand(context, print);
    case 'adopt':
      await commands.adoptCommand(context, print);
      return ExitCode.ok;
    case 'fleet': {
      const fleetCommands = await import('./operator/fleet-commands.js');
      if (parsed.action === 'status') await fleetCommands.fleetStatusCommand(context, Boolean(parsed.json), print);
      else if (parsed.action === 'halt') await fleetCommands.fleetHaltCommand(context, parsed.reason as string | undefined, print);
      else if (parsed.action === 'init') await fleetCommands.fleetInitCommand(context, print);
      else if (parsed.action === 'configure') await fleetCommands.fleetConfigureCommand(context, print);
      else if (parsed.action === 'rollback') await fleetCommands.fleetRollbackCommand(context, parsed.revision as string | undefined, print);
      else if (parsed.action === 'promote') await fleetCommands.fleetPromoteCommand(context, parsed.revision as string | undefined, print);
      else await fleetCommands.fleetResumeCommand(context, parsed.revision as string | undefined, print);
      return ExitCode.ok;
    }
    case 'pause':
      await commands.pauseCommand(context, parsed.reason as string | undefined, print);
      return ExitCode.ok;
    case 'resume':
      await commands.resumeCommand(context, print);
      return ExitCode.ok;
    case 'verify':
      return (await commands.verifyCommand(context, print)) ? ExitCode.ok : ExitCode.verificationFailed;
    case 'plan':
      return (await import('./operator/plan.js')).planCommand(context, Boolean(parsed.json), print);
    case 'history':
      return (await import('./history/command.js')).historyCommand(context, { json: Boolean(parsed.json), since: parsed.since as string | undefined, limit: parsed.limit as number | undefined, verify: Boolean(parsed.verify) }, print);
  }
  return undefined;
}

/** The progress bar of a -f run on a terminal, once it is made; log lines are written above it. */
let progressBar: TerminalProgress | undefined;

/** -f: one check; SIGTERM/SIGINT end it safely and the run exits 0. */
async function fetchOnce(context: AgentContext, log: Logger, { progressBar: withProgressBar }: { progressBar: boolean }): Promise<number> {
  const { checkForUpdate } = await import('./check/update.js');
  // The handlers are stop-signals.ts's, installed first thing; a stop before this line was said by main.
  // A progress bar only for a person watching: a terminal, and plain-text logs.
  const progress = withProgressBar && process.stderr.isTTY && context.settings.logFormat === 'text' ? await (await import('./base/progress.js')).terminalProgress(process.stderr) : undefined;
  progressBar = progress;
  stopRequested.addEventListener(
    'abort',
    () => {
      progress?.stop(); // what was done stays on screen; the stop is said on a line of its own
      log.info(`${stopSignalName()} received: stopping the check safely`);
    },
    { once: true },
  );
  let outcome: Awaited<ReturnType<typeof checkForUpdate>>;
  try {
    outcome = await checkForUpdate({ ...context, lockWaitMs: 0, progress });
  } finally {
    if (context.settings.notify.length > 0 && !stopRequested.aborted) await (await import('./notify/notifier.js')).deliverBeforeExit(context);
  }
  if (stopRequested.aborted) {
    log.info('stopped; the live release is complete and unchanged by this run unless it said "deployed"');
    return ExitCode.ok;
  }
  if (outcome.result === 'unchanged' && outcome.heldBackSinceRollback) {
    log.info(`release ${outcome.release} stays live, as rolled back to; the remote's revision is held back (repo-deploy retry deploys it)`);
  } else if (outcome.result === 'unchanged') {
    log.info(outcome.release ? `up to date: release ${outcome.release}` : 'up to date');
  } else if (outcome.result === 'waiting') {
    log.info(`nothing deployed: revision ${shortRevision(outcome.revision)} ${outcome.reason}${outcome.gate === 'deploy-window' ? ' (-f --ignore-window deploys it now)' : ''}`);
  }
  return outcomeExitCode(outcome);
}

function reportError(error: unknown, verbose: boolean): number {
  const message = redact(oneLine((hostError(error) ?? { message: messageOf(error) }).message));
  process.stderr.write(`repo-deploy: ${message}\n`);
  // An unexpected error's stack helps a bug report; our own errors already say what to do.
  const unexpected = error instanceof DeployError ? (error.kind === 'internal' ? error.cause : undefined) : error;
  if (verbose && unexpected instanceof Error && unexpected.stack) process.stderr.write(redact(unexpected.stack) + '\n');
  return exitCodeOf(error);
}

/**
 * Node's process warnings go through our logger, on one line each. The AWS SDK's seven-line
 * warning that its releases after January 2027 need Node 22 is turned off with the SDK's own
 * switch: docs/remotes.md says when Node 22 is needed.
 */
function routeProcessWarnings(log: Logger): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  process.removeAllListeners('warning');
  process.on('warning', (warning) => log.warn(`${warning.name}: ${warning.message.replace(/\s+/g, ' ')}`));
}

// undici parses HTTP with llhttp compiled to WebAssembly. V8 also compiled that module with its
// optimising tier on background threads, and the process waited for them before it could exit:
// an idle -f check over HTTP took 0.67 s and 107 MiB, 0.45 s and 72 MiB with the baseline
// compiler only. Parsing a 304 or a download's framing is not where any time goes. Set before
// undici is imported (lazily, by the HTTP remote and URL health checks).
setFlagsFromString('--liftoff-only');
// V8 doubles its young generation (up to 16 MiB a semi-space, three of them) while a run
// allocates fast, as reading a central directory of 28,000 entries does, and keeps it to the
// end: a first deploy of 23,881 files peaked at 176 MiB, 137 MiB with the young generation kept
// at its first size (docs/performance.md, "Start-up, memory and first deploys"). Its objects
// then reach the old generation sooner; the time did not change measurably.
setFlagsFromString('--semi-space-growth-factor=1');

process.exitCode = await main();
