// The long-running agent: a check at start, then one at each tick of the schedule; checks never
// overlap. SIGHUP asks for a check now; SIGTERM and SIGINT let the check in progress finish (or
// end its hooks after their grace period) and then exit.
import type { ScheduledTask } from 'node-cron';
import { messageOf } from './errors.js';
import type { Logger } from './log.js';
import { validateSchedule } from './schedule.js';
import { checkForUpdate, type AgentContext, type CheckOutcome } from './update.js';

export interface DaemonOptions {
  context: Omit<AgentContext, 'signal'>;
  /** Resolves when the daemon has stopped. */
  onCheck?: (outcome: CheckOutcome | Error) => void;
}

export async function runDaemon({ context, onCheck }: DaemonOptions): Promise<void> {
  const { settings, log } = context;
  await validateSchedule(settings.schedule);
  const { schedule } = await import('node-cron');
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let checkAgain = false;

  const runCheck = async (reason: string): Promise<void> => {
    if (running) {
      // A tick or SIGHUP during a check: one more check after it, never two at once.
      checkAgain = true;
      log.debug(`check requested (${reason}) while one is running; it follows the current one`);
      return running;
    }
    running = (async () => {
      do {
        checkAgain = false;
        try {
          const outcome = await checkForUpdate({ ...context, signal: stopping.signal });
          onCheck?.(outcome);
        } catch (error) {
          log.error(messageOf(error));
          onCheck?.(error instanceof Error ? error : new Error(String(error)));
        }
      } while (checkAgain && !stopping.signal.aborted);
    })();
    try {
      await running;
    } finally {
      running = undefined;
    }
  };

  log.info(`repo-deploy started: checking on schedule "${settings.schedule}"`);
  const task: ScheduledTask = schedule(settings.schedule, () => runCheck('schedule'), {
    name: 'repo-deploy-check',
    noOverlap: true,
    logger: cronLogger(log),
  });

  const stopped = new Promise<void>((resolveStopped) => {
    const stop = (signalName: string) => {
      if (stopping.signal.aborted) return;
      log.info(`${signalName} received: stopping after the check in progress`);
      stopping.abort();
      void Promise.resolve(task.stop())
        .then(() => task.destroy())
        .then(() => running)
        .then(() => resolveStopped());
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  process.on('SIGHUP', () => {
    log.info('SIGHUP received: checking now');
    void runCheck('SIGHUP');
  });

  void runCheck('start');
  await stopped;
  log.info('repo-deploy stopped');
}

/** node-cron's own messages, through our logger (so they are formatted and redacted like ours). */
function cronLogger(log: Logger) {
  const text = (message: string | Error) => (message instanceof Error ? message.message : message);
  return {
    info: (message: string) => log.debug(`scheduler: ${message}`),
    warn: (message: string) => log.warn(`scheduler: ${message}`),
    error: (message: string | Error) => log.error(`scheduler: ${text(message)}`),
    debug: (message: string | Error) => log.debug(`scheduler: ${text(message)}`),
  };
}
