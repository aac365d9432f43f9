// The long-running agent as one loop: check, decide when the next check may run, wait for that
// instant (or SIGHUP, or a stop), and again. A check runs at start and then at each tick of the
// schedule, plus up to `splay` of random delay; checks never overlap (ticks that pass during a
// check are not made up). After a failed check, ticks are skipped for a backoff that doubles up
// to max-backoff. SIGHUP (or an accepted POST /check) checks now; SIGTERM and SIGINT let the check in progress finish (a
// running hook gets stop-grace before its process group is ended) and then the loop ends.
// Time comes from an injectable clock, so tests can assert the exact instants of every check.
import type { EventEmitter } from 'node:events';
import { sleepUnlessAborted } from '../base/abortable-sleep.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { readPause } from '../gates/pause.js';
import { messageOf } from '../base/errors.js';
import { AgentMetrics, startHealthServer } from './health-server.js';
import { validateSchedule } from '../settings/schedule.js';
import type { AgentContext, CheckReport } from '../core/agent-context.js';
import { checkForUpdate } from '../check/update.js';

/** The daemon's notion of time: what time it is, and a wait that a wake-up can cut short. */
export interface DaemonClock {
  now(): Date;
  /** Resolves after `ms`, or as soon as `wake` aborts. */
  sleep(ms: number, wake: AbortSignal): Promise<void>;
}

// The daemon's loop sleeps again when it wakes before its instant, so a longer wait than
// setTimeout allows is fine.
export const systemClock: DaemonClock = { now: () => new Date(), sleep: sleepUnlessAborted };

export interface DaemonOptions {
  context: Omit<AgentContext, 'signal'>;
  clock?: DaemonClock;
  /** Draws the splay: a number in [0, 1). */
  random?: () => number;
  /** Where SIGHUP, SIGTERM and SIGINT arrive: the process, or a test's emitter. */
  signals?: Pick<EventEmitter, 'on' | 'removeListener'>;
  /** A stop that may have come before the daemon listened for signals (the CLI's, from its first instant). */
  stopRequested?: AbortSignal;
  /** Told every check's outcome (the metrics are; a test may be). */
  onCheck?: (outcome: CheckReport | Error, startedAt: Date) => void;
}

/**
 * What ends a wait between checks: a request to check now (SIGHUP; a webhook) or a stop. A
 * stop also aborts the check in progress through `stopping.signal`.
 */
export class Wakeups {
  readonly stopping = new AbortController();
  private wake = new AbortController();
  private checkRequested = false;

  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  requestCheck(): void {
    this.checkRequested = true;
    this.wake.abort();
  }

  stop(): void {
    this.stopping.abort();
    this.wake.abort();
  }

  /** Waits until the instant `due`; returns early when a check is requested or on a stop. */
  async waitUntil(due: number, clock: DaemonClock): Promise<void> {
    while (!this.stopped && !this.checkRequested && clock.now().getTime() < due) {
      this.wake = new AbortController();
      await clock.sleep(due - clock.now().getTime(), this.wake.signal);
    }
    this.checkRequested = false;
  }
}

/** SIGHUP asks for a check; SIGTERM and SIGINT stop. Returns what removes the listeners. */
function listenForSignals(signals: Pick<EventEmitter, 'on' | 'removeListener'>, wakeups: Wakeups, log: AgentContext['log'], checking: () => boolean): () => void {
  const onHangUp = () => {
    log.info('SIGHUP received: checking now');
    wakeups.requestCheck();
  };
  const onStop = (signalName: string) => () => {
    if (wakeups.stopped) return;
    log.info(`${signalName} received: stopping${checking() ? ' after the check in progress' : ''}`);
    wakeups.stop();
  };
  const handlers = { SIGHUP: onHangUp, SIGTERM: onStop('SIGTERM'), SIGINT: onStop('SIGINT') };
  for (const [name, handler] of Object.entries(handlers)) signals.on(name, handler);
  return () => {
    for (const [name, handler] of Object.entries(handlers)) signals.removeListener(name, handler);
  };
}

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const { context } = options;
  const { settings, log } = context;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  await validateSchedule(settings.schedule);
  const { CronExpressionParser } = await import('../base/lazy/cron-parser.js');
  const nextTickAfter = (instant: Date) => CronExpressionParser.parse(settings.schedule, { currentDate: instant }).next().toDate();

  const metrics = new AgentMetrics(settings.maxAttempts);
  const wakeups = new Wakeups();
  const webhook = settings.webhookSecret ? { secret: settings.webhookSecret, minIntervalMs: settings.webhookMinIntervalMs, now: clock.now, requestCheck: () => wakeups.requestCheck(), log } : undefined;
  if (webhook && !settings.httpListen) log.warn('webhook-secret is set but http-listen is not: POST /check cannot be reached; set http-listen = 127.0.0.1:PORT');
  const healthServer = settings.httpListen ? await startHealthServer(settings.httpListen, metrics, log, webhook) : undefined;
  let checking = false;
  const stopListening = listenForSignals(options.signals ?? process, wakeups, log, () => checking);
  if (options.stopRequested?.aborted) {
    log.info('a stop was asked for while the daemon was starting: stopping before the first check');
    wakeups.stop();
  }

  /** Runs one check; returns how many checks in a row have failed (0 after a good one). */
  const check = async (): Promise<number> => {
    checking = true;
    const startedAt = clock.now();
    let outcome: CheckReport | Error;
    try {
      outcome = await checkForUpdate({ ...context, now: clock.now, signal: wakeups.stopping.signal });
    } catch (error) {
      log.error(messageOf(error));
      outcome = error instanceof Error ? error : new Error(String(error));
    }
    checking = false;
    metrics.record(outcome, (clock.now().getTime() - startedAt.getTime()) / 1000, clock.now());
    // Only the daemon reports it (/metrics), so only the daemon reads it after a check.
    metrics.recordPause((await readPause(cacheLayoutFor(settings.cache))) !== undefined);
    healthServer?.flushRefusals();
    options.onCheck?.(outcome, startedAt);
    return outcome instanceof Error || outcome.result === 'failed' ? metrics.consecutiveFailures : 0;
  };

  log.info(`repo-deploy started: checking on schedule "${settings.schedule}"${settings.splayMs ? ` with up to ${settings.splayMs / 1000} s of splay` : ''}`);
  try {
    let failuresInARow = wakeups.stopped ? 0 : await check();
    let tick = nextTickAfter(clock.now());
    while (!wakeups.stopped) {
      // The next scheduled check: the first tick that is not backed off, plus its splay.
      const notBefore = failuresInARow > 0 ? clock.now().getTime() + backOff(settings, failuresInARow, log) : 0;
      while (tick.getTime() < notBefore) {
        log.debug(`scheduled check skipped: backing off until ${new Date(notBefore).toISOString()} (tick ${tick.toISOString()})`);
        tick = nextTickAfter(tick);
      }
      const splay = Math.floor(random() * settings.splayMs);
      if (settings.splayMs) log.debug(`tick ${tick.toISOString()}: checking after ${splay} ms of splay`);
      await wakeups.waitUntil(tick.getTime() + splay, clock);
      if (wakeups.stopped) break;
      failuresInARow = await check();
      // Ticks that passed during the check are not made up; a check that SIGHUP brought before
      // its tick leaves that tick in place.
      if (clock.now().getTime() >= tick.getTime()) tick = nextTickAfter(clock.now());
    }
  } finally {
    stopListening();
    if (healthServer) {
      healthServer.flushRefusals(true);
      healthServer.closeAllConnections();
      await new Promise((resolveClose) => healthServer.close(resolveClose));
    }
  }
  log.info('repo-deploy stopped');
}

/** The wait after a failed check: retry-backoff, doubled at each further failure, up to max-backoff. */
function backOff(settings: AgentContext['settings'], failuresInARow: number, log: AgentContext['log']): number {
  const backoff = Math.min(settings.retryBackoffMs * 2 ** (failuresInARow - 1), settings.maxBackoffMs);
  // Not "the live release is unchanged": a failed check says itself what is live (a revert that could not go back).
  log.warn(`check failed ${failuresInARow} time${failuresInARow > 1 ? 's' : ''} in a row; next check in ${Math.round(backoff / 1000)} s or later`);
  return backoff;
}
