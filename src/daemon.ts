// The long-running agent as one loop: a check at start, then one at each tick of the schedule
// (with up to `splay` of random delay), never two at once. After a failed check, ticks are
// skipped for a backoff that doubles up to max-backoff. SIGHUP asks for a check now; SIGTERM and
// SIGINT let the check in progress finish (a running hook gets stop-grace before its process
// group is ended) and then exit 0.
import type { Server } from 'node:http';
import type { ScheduledTask } from 'node-cron';
import { messageOf } from './errors.js';
import { AgentMetrics, startHealthServer } from './health-server.js';
import type { Logger } from './log.js';
import { validateSchedule } from './schedule.js';
import { checkForUpdate, type AgentContext, type CheckOutcome } from './update.js';

export interface DaemonOptions {
  context: Omit<AgentContext, 'signal'>;
}

export async function runDaemon({ context }: DaemonOptions): Promise<void> {
  const { settings, log } = context;
  await validateSchedule(settings.schedule);
  const { schedule } = await import('node-cron');
  const metrics = new AgentMetrics(settings.maxAttempts);
  let healthServer: Server | undefined;
  if (settings.httpListen) healthServer = await startHealthServer(settings.httpListen, metrics, log);

  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let checkAgain = false;
  let failuresInARow = 0;
  let nextAllowedAt = 0;

  const runOnce = async () => {
    const started = Date.now();
    let outcome: CheckOutcome | Error;
    try {
      outcome = await checkForUpdate({ ...context, signal: stopping.signal });
    } catch (error) {
      log.error(messageOf(error));
      outcome = error instanceof Error ? error : new Error(String(error));
    }
    metrics.record(outcome, (Date.now() - started) / 1000, context.now());
    const failedCheck = outcome instanceof Error || outcome.result === 'failed';
    failuresInARow = failedCheck ? failuresInARow + 1 : 0;
    if (failedCheck && !stopping.signal.aborted) {
      const backoff = Math.min(settings.retryBackoffMs * 2 ** (failuresInARow - 1), settings.maxBackoffMs);
      nextAllowedAt = Date.now() + backoff;
      log.warn(`check failed ${failuresInARow} time${failuresInARow > 1 ? 's' : ''} in a row; the live release is unchanged; next check in ${Math.round(backoff / 1000)} s or later`);
    } else {
      nextAllowedAt = 0;
    }
  };

  const requestCheck = async (reason: 'start' | 'schedule' | 'SIGHUP'): Promise<void> => {
    if (stopping.signal.aborted) return;
    if (reason === 'schedule' && Date.now() < nextAllowedAt) {
      log.debug(`scheduled check skipped: backing off for ${Math.ceil((nextAllowedAt - Date.now()) / 1000)} s more`);
      return;
    }
    if (running) {
      checkAgain = true;
      log.debug(`check requested (${reason}) while one is running; it follows the current one`);
      return running;
    }
    running = (async () => {
      do {
        checkAgain = false;
        await runOnce();
      } while (checkAgain && !stopping.signal.aborted);
    })();
    try {
      await running;
    } finally {
      running = undefined;
    }
  };

  log.info(`repo-deploy started: checking on schedule "${settings.schedule}"${settings.splayMs ? ` with up to ${settings.splayMs / 1000} s of splay` : ''}`);
  // The splay is drawn here, not by node-cron, so the log says which delay each tick got.
  const splayTimers = new Set<NodeJS.Timeout>();
  const onTick = (tick: Date) => {
    const delay = Math.floor(Math.random() * settings.splayMs);
    if (settings.splayMs) log.debug(`tick ${tick.toISOString()}: checking after ${delay} ms of splay`);
    if (delay === 0) return requestCheck('schedule');
    const timer = setTimeout(() => {
      splayTimers.delete(timer);
      void requestCheck('schedule');
    }, delay);
    splayTimers.add(timer);
  };
  const task: ScheduledTask = schedule(settings.schedule, (tickContext) => onTick(tickContext.date), {
    name: 'repo-deploy-check',
    noOverlap: true,
    logger: cronLogger(log),
  });

  const stopped = new Promise<void>((resolveStopped) => {
    const stop = (signalName: string) => {
      if (stopping.signal.aborted) return;
      log.info(`${signalName} received: stopping${running ? ' after the check in progress' : ''}`);
      stopping.abort();
      void (async () => {
        await task.stop();
        await task.destroy();
        for (const timer of splayTimers) clearTimeout(timer);
        await running;
        if (healthServer) {
          healthServer.closeAllConnections();
          await new Promise((resolveClose) => healthServer?.close(resolveClose));
        }
        resolveStopped();
      })();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  process.on('SIGHUP', () => {
    log.info('SIGHUP received: checking now');
    void requestCheck('SIGHUP');
  });

  void requestCheck('start');
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
