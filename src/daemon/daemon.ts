// The long-running agent as one loop: check, decide when the next check may run, wait for that
// instant (or SIGHUP, or a stop), and again. A check runs at start and then at each tick of the
// schedule, plus up to `splay` of random delay; checks never overlap (ticks that pass during a
// check are not made up). After a failed check, ticks are skipped for a backoff that doubles up
// to max-backoff. SIGHUP (or an accepted POST /check) checks now; SIGTERM and SIGINT let the check in progress finish (a
// running hook gets stop-grace before its process group is ended) and then the loop ends.
// Time comes from an injectable clock, so tests can assert the exact instants of every check.
import type { EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { sleepUnlessAborted } from '../base/abortable-sleep.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { readPause } from '../gates/pause.js';
import { messageOf } from '../base/errors.js';
import { AgentMetrics, MetricFamilies, startHealthServer, type AppRoute, type AppsHealth, type HealthServer } from './health-server.js';
import { validateSchedule } from '../settings/schedule.js';
import type { AgentContext, CheckReport } from '../core/agent-context.js';
import type { AgentSettings } from '../core/settings.js';
import type { Logger } from '../base/log.js';
import { checkForUpdate } from '../check/update.js';
import { Courier } from './courier.js';
import { runDriftLoop } from './drift-loop.js';

/** The daemon's notion of time: what time it is, and a wait that a wake-up can cut short. */
export interface DaemonClock {
  now(): Date;
  /** Resolves after `ms`, or as soon as `wake` aborts. */
  sleep(ms: number, wake: AbortSignal): Promise<void>;
}

// The daemon's loop sleeps again when it wakes before its instant, so a longer wait than
// setTimeout allows is fine.
export const systemClock: DaemonClock = { now: () => new Date(), sleep: sleepUnlessAborted };

/** One app the daemon checks: its own settings, log, lock, state, schedule and backoff. */
export interface DaemonApp {
  /** The app's name in the directory form (a label on its metrics, a field on its log lines); none for the original form's one app. */
  name?: string;
  context: Omit<AgentContext, 'signal'>;
}

export interface DaemonOptions {
  /** The agent's own: http-listen, the agent-wide webhook, its log. */
  agent: { settings: AgentSettings; log: Logger };
  /** The apps, each checked in a loop of its own (the original form: one). */
  apps: DaemonApp[];
  clock?: DaemonClock;
  /** Draws the splay: a number in [0, 1). */
  random?: () => number;
  /** Where SIGHUP, SIGTERM and SIGINT arrive: the process, or a test's emitter. */
  signals?: Pick<EventEmitter, 'on' | 'removeListener'>;
  /** A stop that may have come before the daemon listened for signals (the CLI's, from its first instant). */
  stopRequested?: AbortSignal;
  /** Told every check's outcome (the metrics are; a test may be), with the app's name in the directory form. */
  onCheck?: (outcome: CheckReport | Error, startedAt: Date, app?: string) => void;
  /**
   * The directory form: SIGHUP reads the apps again. Apps added start, removed ones stop after
   * their check in progress, changed ones are restarted with their new settings; undefined keeps
   * the apps running as they are (the reason was logged).
   */
  reloadApps?: () => Promise<DaemonApp[] | undefined>;
}

/**
 * What ends a wait between checks: a request to check now (SIGHUP; a webhook) or a stop. A
 * stop also aborts the check in progress through `stopping.signal`.
 */
export class Wakeups {
  readonly stopping = new AbortController();
  private wake = new AbortController();
  private checkRequested = false;
  private retiring = false;

  get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Stopped, or retired: the loop ends (after its check in progress, which a stop also aborts). */
  get ended(): boolean {
    return this.stopped || this.retiring;
  }

  /** Who asked for the next check (SIGHUP, a webhook and its proof), for the deploy history. */
  private requestedBy: string | undefined;

  requestCheck(by?: string): void {
    this.checkRequested = true;
    this.requestedBy = by;
    this.wake.abort();
  }

  /** Who asked for the check that starts now: the last requester, else the schedule. */
  takeTrigger(): string {
    const by = this.requestedBy ?? 'schedule';
    this.requestedBy = undefined;
    return by;
  }

  stop(): void {
    this.stopping.abort();
    this.wake.abort();
  }

  /** The app was removed or changed (SIGHUP): its loop ends after the check in progress, which goes on. */
  retire(): void {
    this.retiring = true;
    this.wake.abort();
  }

  /** Waits until the instant `due`; returns early when a check is requested or on a stop. */
  async waitUntil(due: number, clock: DaemonClock): Promise<void> {
    while (!this.ended && !this.checkRequested && clock.now().getTime() < due) {
      this.wake = new AbortController();
      await clock.sleep(due - clock.now().getTime(), this.wake.signal);
    }
    this.checkRequested = false;
  }
}

/** One app as the daemon runs it: its loop's wake-ups and its metrics. */
interface RunningApp extends DaemonApp {
  wakeups: Wakeups;
  metrics: AgentMetrics;
  checking: boolean;
  /** What its settings were read as, to tell a changed app at a reload. */
  fingerprint: string;
  /** Its loop; resolves when the loop has ended. */
  loop?: Promise<void>;
  /** What the HTTP server serves of it: made once, so its POST /check keeps its rate limit across reloads. */
  route: AppRoute;
}

const fingerprintOf = (app: DaemonApp) => JSON.stringify({ ...app.context.settings, warnings: [] });

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const { settings, log } = options.agent;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const daemonApps = options.apps;
  for (const app of daemonApps) await validateSchedule(app.context.settings.schedule);
  const { CronExpressionParser } = await import('../base/lazy/cron-parser.js');

  const perApp = daemonApps.some((app) => app.name !== undefined);
  // Many apps' checks at once make V8 grow its heap far past what is live: a daemon of 50 apps on
  // a 1-second schedule held 135 MiB, 100-106 MiB with V8's optimize-for-size, at 12-15 ms of CPU
  // per check instead of 11-12 (npm run bench -- --only many-apps, and 20-second runs beside it).
  // The original form's one app keeps V8's defaults.
  if (perApp) setFlagsFromString('--optimize-for-size');
  const families = new MetricFamilies(perApp);
  const stopping = new AbortController();
  const webhookOf = (secret: string | undefined, wake: () => RunningApp[], appLog: AgentContext['log']) =>
    secret ? { secret, minIntervalMs: settings.webhookMinIntervalMs, now: clock.now, requestCheck: (by: string) => wake().forEach((app) => app.wakeups.requestCheck(by)), log: appLog } : undefined;
  const running = new Map<string, RunningApp>();
  const retiring = new Set<Promise<void>>();
  // The apps /healthz, /metrics and POST /check?app= see: replaced in place at a reload.
  const health: AppsHealth = { registry: families.registry, apps: [] };
  const refreshRoutes = () => {
    health.apps.splice(0, health.apps.length, ...[...running.values()].map((app) => app.route));
  };
  const prepareApp = (app: DaemonApp): RunningApp => {
    const metrics = new AgentMetrics(app.context.settings.maxAttempts, { families, app: app.name });
    const prepared: RunningApp = { ...app, wakeups: new Wakeups(), metrics, checking: false, fingerprint: fingerprintOf(app), route: { name: app.name ?? '', metrics } };
    prepared.route.webhook = webhookOf(app.context.settings.webhookSecret, () => [prepared], app.context.log);
    return prepared;
  };
  for (const app of daemonApps) running.set(app.name ?? '', prepareApp(app));
  refreshRoutes();
  // POST /check (no app named) wakes every app; POST /check?app=NAME the one, with its own secret.
  const webhook = webhookOf(settings.webhookSecret, () => [...running.values()], log);
  if ((webhook || daemonApps.some((app) => app.context.settings.webhookSecret)) && !settings.httpListen) log.warn('webhook-secret is set but http-listen is not: POST /check cannot be reached; set http-listen = 127.0.0.1:PORT');
  const healthServer = settings.httpListen ? await startHealthServer(settings.httpListen, perApp ? health : [...running.values()][0]!.metrics, log, webhook) : undefined;
  const tools = (app: RunningApp): LoopTools => ({ clock, random, nextTickAfter: (instant) => CronExpressionParser.parse(app.context.settings.schedule, { currentDate: instant }).next().toDate(), healthServer, onCheck: options.onCheck });
  const startLoop = (app: RunningApp, after: Promise<void> = Promise.resolve()) => {
    // A changed app's new loop starts once the old one has ended: they share one lock and state.
    app.loop = after
      .then(() => (stopping.signal.aborted ? undefined : runApp(app, tools(app))))
      .catch((error: unknown) => app.context.log.error(`this app's checks have stopped: ${messageOf(error)}; restart the agent (systemctl restart repo-deploy)`));
  };

  const reload = async () => {
    const fresh = await options.reloadApps!();
    if (!fresh || stopping.signal.aborted) return;
    const freshByName = new Map(fresh.map((app) => [app.name ?? '', app]));
    for (const [name, app] of running) {
      const next = freshByName.get(name);
      if (next && fingerprintOf(next) === app.fingerprint) continue;
      app.wakeups.retire();
      running.delete(name);
      const ended = app.loop ?? Promise.resolve();
      retiring.add(ended);
      void ended.finally(() => retiring.delete(ended));
      if (!next) {
        log.info(`app ${name} is no longer in the apps directory: it stops${app.checking ? ' after its check in progress' : ''}`, { app: name });
        // Its series go once its loop has ended, unless the app came back meanwhile.
        void ended.then(() => running.has(name) || app.metrics.forget());
      }
      else {
        const restarted = prepareApp(next);
        running.set(name, restarted);
        next.context.log.info(`app ${name} changed: it restarts with its new settings${app.checking ? ' after its check in progress' : ''}`);
        startLoop(restarted, ended);
      }
    }
    for (const [name, app] of freshByName) {
      if (running.has(name)) continue;
      const added = prepareApp(app);
      running.set(name, added);
      app.context.log.info(`app ${name} added`);
      startLoop(added);
    }
    refreshRoutes();
  };

  let reloading = Promise.resolve();
  const onHangUp = () => {
    if (!options.reloadApps) {
      log.info('SIGHUP received: checking now');
      for (const app of running.values()) app.wakeups.requestCheck('SIGHUP');
      return;
    }
    log.info('SIGHUP received: reading the apps again and checking each now');
    // One reload after another: two that overlapped could finish in the other order, and the one
    // that read the directory first would have the last word.
    reloading = reloading.then(reload).then(
      () => running.forEach((app) => app.wakeups.requestCheck('SIGHUP')),
      (error: unknown) => log.error(`the apps could not be read again; they run as they were: ${messageOf(error)}`),
    );
  };
  const stopAll = () => {
    stopping.abort();
    for (const app of running.values()) app.wakeups.stop();
  };
  const onStop = (signalName: string) => () => {
    if (stopping.signal.aborted) return;
    log.info(`${signalName} received: stopping${[...running.values()].some((app) => app.checking) ? ' after the check in progress' : ''}`);
    stopAll();
  };
  const signals = options.signals ?? process;
  const handlers = { SIGHUP: onHangUp, SIGTERM: onStop('SIGTERM'), SIGINT: onStop('SIGINT') };
  for (const [name, handler] of Object.entries(handlers)) signals.on(name, handler);
  if (options.stopRequested?.aborted) {
    log.info('a stop was asked for while the daemon was starting: stopping before the first check');
    stopAll();
  }

  try {
    // Each app in a loop of its own: a hung hook or a slow download in one delays no other.
    for (const app of running.values()) startLoop(app);
    await new Promise<void>((resolveStop) => (stopping.signal.aborted ? resolveStop() : stopping.signal.addEventListener('abort', () => resolveStop(), { once: true })));
    // Every loop ends after the check it is in (which the stop aborts safely).
    await Promise.all([...[...running.values()].map((app) => app.loop), ...retiring]);
  } finally {
    for (const [name, handler] of Object.entries(handlers)) signals.removeListener(name, handler);
    if (healthServer) {
      healthServer.flushRefusals(true);
      healthServer.closeAllConnections();
      await new Promise((resolveClose) => healthServer.close(resolveClose));
    }
  }
  log.info('repo-deploy stopped');
}

interface LoopTools {
  clock: DaemonClock;
  random: () => number;
  nextTickAfter: (instant: Date) => Date;
  healthServer: HealthServer | undefined;
  onCheck: DaemonOptions['onCheck'];
}

/** One app's loop: check, wait for the next tick (backed off after failures), again, until the stop. */
async function runApp(app: RunningApp, { clock, random, nextTickAfter, healthServer, onCheck }: LoopTools): Promise<void> {
  const { context, wakeups, metrics } = app;
  const { settings, log } = context;
  const courier = new Courier({ settings, log, now: clock.now });
  /** drift-action = redeploy: the release the next check deploys again. */
  let redeployRelease: string | undefined;
  // Ends with the app's loop: on a stop, and when a reload retires the app.
  const driftEnd = new AbortController();
  const drift = runDriftLoop({
    context,
    clock,
    metrics,
    stopping: AbortSignal.any([wakeups.stopping.signal, driftEnd.signal]),
    redeploy: (release) => {
      redeployRelease = release;
      wakeups.requestCheck('drift check');
    },
    told: () => courier.kick(),
  });

  /** Runs one check; returns how many checks in a row have failed (0 after a good one). */
  const check = async (): Promise<number> => {
    app.checking = true;
    const startedAt = clock.now();
    let outcome: CheckReport | Error;
    try {
      const redeploying = redeployRelease;
      redeployRelease = undefined;
      outcome = await checkForUpdate({ ...context, now: clock.now, signal: wakeups.stopping.signal, trigger: wakeups.takeTrigger(), redeployRelease: redeploying });
    } catch (error) {
      log.error(messageOf(error));
      outcome = error instanceof Error ? error : new Error(String(error));
    }
    app.checking = false;
    metrics.record(outcome, (clock.now().getTime() - startedAt.getTime()) / 1000, clock.now());
    // Only the daemon reports it (/metrics), so only the daemon reads it after a check.
    metrics.recordPause((await readPause(cacheLayoutFor(settings.cache))) !== undefined);
    healthServer?.flushRefusals();
    onCheck?.(outcome, startedAt, app.name);
    courier.kick();
    return outcome instanceof Error || outcome.result === 'failed' ? metrics.consecutiveFailures : 0;
  };

  log.info(`repo-deploy started: checking on schedule "${settings.schedule}"${settings.splayMs ? ` with up to ${settings.splayMs / 1000} s of splay` : ''}`);
  let failuresInARow = wakeups.ended ? 0 : await check();
  let tick = nextTickAfter(clock.now());
  while (!wakeups.ended) {
    // The next scheduled check: the first tick that is not backed off, plus its splay.
    const notBefore = failuresInARow > 0 ? clock.now().getTime() + backOff(settings, failuresInARow, log) : 0;
    while (tick.getTime() < notBefore) {
      log.debug(`scheduled check skipped: backing off until ${new Date(notBefore).toISOString()} (tick ${tick.toISOString()})`);
      tick = nextTickAfter(tick);
    }
    const splay = Math.floor(random() * settings.splayMs);
    if (settings.splayMs) log.debug(`tick ${tick.toISOString()}: checking after ${splay} ms of splay`);
    await wakeups.waitUntil(tick.getTime() + splay, clock);
    if (wakeups.ended) break;
    failuresInARow = await check();
    // Ticks that passed during the check are not made up; a check that SIGHUP brought before
    // its tick leaves that tick in place.
    if (clock.now().getTime() >= tick.getTime()) tick = nextTickAfter(clock.now());
  }
  driftEnd.abort();
  await courier.stop();
  await drift;
}

/** The wait after a failed check: retry-backoff, doubled at each further failure, up to max-backoff. */
function backOff(settings: AgentContext['settings'], failuresInARow: number, log: AgentContext['log']): number {
  const backoff = Math.min(settings.retryBackoffMs * 2 ** (failuresInARow - 1), settings.maxBackoffMs);
  // Not "the live release is unchanged": a failed check says itself what is live (a revert that could not go back).
  log.warn(`check failed ${failuresInARow} time${failuresInARow > 1 ? 's' : ''} in a row; next check in ${Math.round(backoff / 1000)} s or later`);
  return backoff;
}
