// The long-running agent as one loop: check, decide when the next check may run, wait for that
// instant (or SIGHUP, or a stop), and again. A check runs at start and then at each tick of the
// schedule, plus up to `splay` of random delay; checks never overlap (ticks that pass during a
// check are not made up). After a failed check, ticks are skipped for a backoff that doubles up
// to max-backoff. SIGHUP checks now; SIGTERM and SIGINT let the check in progress finish (a
// running hook gets stop-grace before its process group is ended) and then the loop ends.
// Time comes from an injectable clock, so tests can assert the exact instants of every check.
import type { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import { messageOf } from './errors.js';
import { AgentMetrics, startHealthServer } from './health-server.js';
import { validateSchedule } from './schedule.js';
import type { AgentContext, CheckReport } from './agent-context.js';
import { checkForUpdate } from './update.js';

/** The daemon's notion of time: what time it is, and a wait that a wake-up can cut short. */
export interface DaemonClock {
  now(): Date;
  /** Resolves after `ms`, or as soon as `wake` aborts. */
  sleep(ms: number, wake: AbortSignal): Promise<void>;
}

export const systemClock: DaemonClock = {
  now: () => new Date(),
  sleep: (ms, wake) =>
    new Promise((resolveSleep) => {
      if (wake.aborted) return resolveSleep();
      // setTimeout cannot wait longer than 2^31 - 1 ms (about 24.8 days): the loop sleeps again.
      const timer = setTimeout(finish, Math.min(ms, 2 ** 31 - 1));
      function finish() {
        clearTimeout(timer);
        wake.removeEventListener('abort', finish);
        resolveSleep();
      }
      wake.addEventListener('abort', finish, { once: true });
    }),
};

export interface DaemonOptions {
  context: Omit<AgentContext, 'signal'>;
  clock?: DaemonClock;
  /** Draws the splay: a number in [0, 1). */
  random?: () => number;
  /** Where SIGHUP, SIGTERM and SIGINT arrive: the process, or a test's emitter. */
  signals?: Pick<EventEmitter, 'on' | 'removeListener'>;
  /** Told every check's outcome (the metrics are; a test may be). */
  onCheck?: (outcome: CheckReport | Error, startedAt: Date) => void;
}

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const { context } = options;
  const { settings, log } = context;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const signals = options.signals ?? process;
  await validateSchedule(settings.schedule);
  const { CronExpressionParser } = await import('cron-parser');
  const nextTickAfter = (instant: Date) => CronExpressionParser.parse(settings.schedule, { currentDate: instant }).next().toDate();

  const metrics = new AgentMetrics(settings.maxAttempts);
  let healthServer: Server | undefined;
  if (settings.httpListen) healthServer = await startHealthServer(settings.httpListen, metrics, log);

  const stopping = new AbortController();
  let wake = new AbortController();
  let checkNow = false;
  const onHangUp = () => {
    log.info('SIGHUP received: checking now');
    checkNow = true;
    wake.abort();
  };
  const onStop = (signalName: string) => () => {
    if (stopping.signal.aborted) return;
    log.info(`${signalName} received: stopping${checking ? ' after the check in progress' : ''}`);
    stopping.abort();
    wake.abort();
  };
  const onTerm = onStop('SIGTERM');
  const onInt = onStop('SIGINT');
  signals.on('SIGHUP', onHangUp);
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);

  let checking = false;
  /** Failed checks in a row, as the state counts them; what the backoff doubles with. */
  let failuresInARow = 0;
  /** Runs one check; says whether it failed in a way the daemon backs off from (a fetch failure). */
  const check = async (): Promise<boolean> => {
    checking = true;
    const startedAt = clock.now();
    let outcome: CheckReport | Error;
    try {
      outcome = await checkForUpdate({ ...context, now: clock.now, signal: stopping.signal });
    } catch (error) {
      log.error(messageOf(error));
      outcome = error instanceof Error ? error : new Error(String(error));
    }
    checking = false;
    metrics.record(outcome, (clock.now().getTime() - startedAt.getTime()) / 1000, clock.now());
    failuresInARow = metrics.consecutiveFailures;
    options.onCheck?.(outcome, startedAt);
    return outcome instanceof Error || outcome.result === 'failed';
  };

  log.info(`repo-deploy started: checking on schedule "${settings.schedule}"${settings.splayMs ? ` with up to ${settings.splayMs / 1000} s of splay` : ''}`);
  try {
    let failed = await check();
    let tick = nextTickAfter(clock.now());
    let notBefore = 0;
    for (;;) {
      if (stopping.signal.aborted) break;
      if (failed) {
        const backoff = Math.min(settings.retryBackoffMs * 2 ** (failuresInARow - 1), settings.maxBackoffMs);
        notBefore = clock.now().getTime() + backoff;
        log.warn(`check failed ${failuresInARow} time${failuresInARow > 1 ? 's' : ''} in a row; the live release is unchanged; next check in ${Math.round(backoff / 1000)} s or later`);
      } else {
        notBefore = 0;
      }
      // The next scheduled check: the first tick that is not backed off, plus its splay.
      while (tick.getTime() < notBefore) {
        log.debug(`scheduled check skipped: backing off until ${new Date(notBefore).toISOString()} (tick ${tick.toISOString()})`);
        tick = nextTickAfter(tick);
      }
      const splay = Math.floor(random() * settings.splayMs);
      if (settings.splayMs) log.debug(`tick ${tick.toISOString()}: checking after ${splay} ms of splay`);
      const due = tick.getTime() + splay;
      while (!stopping.signal.aborted && !checkNow && clock.now().getTime() < due) {
        wake = new AbortController();
        await clock.sleep(due - clock.now().getTime(), wake.signal);
      }
      if (stopping.signal.aborted) break;
      checkNow = false;
      failed = await check();
      // Ticks that passed during the check are not made up; a check that SIGHUP brought before
      // its tick leaves that tick in place.
      if (clock.now().getTime() >= tick.getTime()) tick = nextTickAfter(clock.now());
    }
  } finally {
    signals.removeListener('SIGHUP', onHangUp);
    signals.removeListener('SIGTERM', onTerm);
    signals.removeListener('SIGINT', onInt);
    if (healthServer) {
      healthServer.closeAllConnections();
      await new Promise((resolveClose) => healthServer?.close(resolveClose));
    }
  }
  log.info('repo-deploy stopped');
}
