#!/usr/bin/env node
// The command line: parses, calls the core, prints err.message (the stack only with -v) and
// sets the exit code. Flags keep the meaning they had in the original repo-deploy 1.0.8.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { defaultConfigPath, loadSettings, type Settings } from './config.js';
import { DeployError, ExitCode, exitCodeOf, messageOf } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { redact } from './redact.js';
import type { CheckOutcome } from './update.js';
import { agentVersion } from './version.js';

const outcomeExitCodes: Record<CheckOutcome['result'], number> = {
  unchanged: ExitCode.ok,
  updated: ExitCode.ok,
  blocked: ExitCode.blockedByPreHook,
  reverted: ExitCode.revertedAfterPostHook,
  failed: ExitCode.fetchFailed,
};

async function main(argv: string[]): Promise<number> {
  let verbose = argv.includes('-v') || argv.includes('--verbose');
  let usageFailure: string | undefined;
  const parsed = await yargs(argv)
    .scriptName('repo-deploy')
    .usage('$0 [options]\n\nPolls one remote, stages each new version as a release, runs the hooks and swaps the live path atomically.')
    .option('config', { alias: 'c', type: 'string', describe: `Config file [default: ${defaultConfigPath}]` })
    .option('cache', { type: 'string', describe: 'Cache/work directory [default: /var/cache/repo-deploy]' })
    .option('pre-hooks', { type: 'string', describe: 'Pre-update hook directory [default: /etc/repo-deploy/pre-update.d]' })
    .option('post-hooks', { type: 'string', describe: 'Post-update hook directory [default: /etc/repo-deploy/post-update.d]' })
    .option('remote', { alias: 'r', type: 'string', describe: 'The remote to deploy (git URL, http(s)/s3 zip, local zip)' })
    .option('local', { alias: 'l', type: 'string', describe: 'The live path [default: /var/deploy/current]' })
    .option('fetch', { alias: 'f', type: 'boolean', default: false, describe: 'Check once, deploy if changed, exit' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'Debug logging' })
    .example('$0 -f -r https://ci.example.com/app.zip -l /srv/app/current', 'Deploy once from an HTTP zip')
    .example('$0 -c /etc/repo-deploy/repo-deploy.cfg', 'Run as a daemon with a config file')
    .epilog('Exit codes of -f: 0 up to date or updated, 2 bad usage or config, 3 fetch failed, 4 blocked by a pre-update hook, 5 reverted after a post-update hook failed, 6 lock held by another run.')
    .version(agentVersion)
    .strict()
    .help()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail((message, error) => {
      usageFailure = message ?? messageOf(error);
    })
    .parseAsync();
  if (usageFailure !== undefined) {
    process.stderr.write(`repo-deploy: ${usageFailure}; see repo-deploy --help\n`);
    return ExitCode.usage;
  }
  if (parsed.help || parsed.version) return ExitCode.ok;
  verbose = parsed.verbose;

  let settings: Settings;
  try {
    settings = await loadSettings({
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
    });
  } catch (error) {
    return reportError(error, verbose);
  }
  const log = createLogger({ verbose: settings.verbose, format: settings.logFormat });
  routeProcessWarnings(log);
  const context = { settings, log, env: process.env, now: () => new Date() };

  try {
    const { classifyRemote } = await import('./remote.js');
    const { requireRemote } = await import('./config.js');
    classifyRemote(requireRemote(settings)); // a remote of no known form is a usage error, before any disk work
    if (!parsed.fetch) {
      const { runDaemon } = await import('./daemon.js');
      await runDaemon({ context: { ...context, lockWaitMs: 15_000 } });
      return ExitCode.ok;
    }
    const { checkForUpdate } = await import('./update.js');
    const stopping = new AbortController();
    const stop = () => stopping.abort();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    const outcome = await checkForUpdate({ ...context, signal: stopping.signal, lockWaitMs: 0 });
    if (outcome.result === 'unchanged') {
      log.info(outcome.release ? `up to date: release ${outcome.release}` : 'up to date');
    }
    if (outcome.result === 'failed') return outcome.error.exitCode;
    return outcomeExitCodes[outcome.result];
  } catch (error) {
    return reportError(error, verbose);
  }
}

function reportError(error: unknown, verbose: boolean): number {
  const message = redact(messageOf(error));
  process.stderr.write(`repo-deploy: ${message}\n`);
  // An unexpected error's stack helps a bug report; our own errors already say what to do.
  const unexpected = error instanceof DeployError ? (error.kind === 'internal' ? error.cause : undefined) : error;
  if (verbose && unexpected instanceof Error && unexpected.stack) process.stderr.write(redact(unexpected.stack) + '\n');
  return exitCodeOf(error);
}

/**
 * Node's process warnings go through our logger. The AWS SDK warns on every start under Node 20
 * that its releases after January 2027 need Node 22: worth knowing once, not at every check.
 */
function routeProcessWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'NodeVersionSupportWarning') log.debug(`${warning.name}: ${warning.message.replace(/\s+/g, ' ')}`);
    else log.warn(`${warning.name}: ${warning.message}`);
  });
}

process.exitCode = await main(hideBin(process.argv));
