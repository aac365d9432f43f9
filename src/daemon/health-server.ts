// Optional http-listen endpoint: /healthz for a load balancer or a fleet monitor, /metrics in
// the Prometheus text format (prom-client), and POST /check when a webhook secret is set.
// Unhealthy once max-attempts checks in a row failed, whenever that happens, not only before the
// first success.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { usageError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { newBodyBudget, webhookHandler, type WebhookHandler, type WebhookOptions } from './webhook.js';
import type { CheckReport } from '../core/agent-context.js';

/**
 * The metric families of one agent, in one registry. In the directory form every series carries
 * the label `app`; the original form's series keep the names and labels they always had.
 */
export class MetricFamilies {
  readonly registry = new Registry();
  readonly checks: Counter<string>;
  readonly deploys: Counter<string>;
  readonly reverts: Counter<string>;
  readonly lastSuccess: Gauge<string>;
  readonly failedInARow: Gauge<string>;
  readonly live: Gauge<string>;
  readonly paused: Gauge<string>;
  readonly waiting: Gauge<string>;
  readonly waitingUntil: Gauge<string>;
  readonly driftFiles: Gauge<string>;
  readonly duration: Histogram<string>;

  constructor(readonly perApp: boolean) {
    const app = perApp ? ['app'] : [];
    const registers = [this.registry];
    this.checks = new Counter({ name: 'repo_deploy_checks_total', help: 'Checks of the remote, by result', labelNames: [...app, 'result'], registers });
    this.deploys = new Counter({ name: 'repo_deploy_deploys_total', help: 'Releases that went live', labelNames: app, registers });
    this.reverts = new Counter({ name: 'repo_deploy_reverts_total', help: 'Updates reverted after a post-update hook failed', labelNames: app, registers });
    this.lastSuccess = new Gauge({ name: 'repo_deploy_last_success_timestamp_seconds', help: 'When a check last succeeded (up to date or updated)', labelNames: app, registers });
    this.failedInARow = new Gauge({ name: 'repo_deploy_consecutive_failed_checks', help: 'Checks that failed in a row', labelNames: app, registers });
    this.live = new Gauge({ name: 'repo_deploy_live_release_info', help: 'The live release and its revision', labelNames: [...app, 'release', 'revision'], registers });
    this.paused = new Gauge({ name: 'repo_deploy_paused', help: '1 while an operator has paused deploys (repo-deploy pause)', labelNames: app, registers });
    this.waiting = new Gauge({ name: 'repo_deploy_waiting_revision_info', help: 'A new revision that may not be deployed yet, and what it waits for (paused, deploy-window, min-age)', labelNames: [...app, 'revision', 'gate'], registers });
    this.waitingUntil = new Gauge({ name: 'repo_deploy_waiting_eligible_timestamp_seconds', help: 'When the waiting revision may be deployed (the deploy window opens, min-age is reached); 0 when unknown or nothing waits', labelNames: app, registers });
    this.driftFiles = new Gauge({ name: 'repo_deploy_drift_files', help: 'Files of the live tree that differ from its release\'s manifest (changed, missing or extra) at the last drift check (verify-interval)', labelNames: app, registers });
    this.duration = new Histogram({
      name: 'repo_deploy_check_duration_seconds',
      help: 'How long a check (and update) took',
      labelNames: app,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
  }
}

/** One app's metrics and health, as its checks report them. */
export class AgentMetrics {
  readonly registry: Registry;
  private readonly families: MetricFamilies;
  private readonly labels: Record<string, string>;
  /** The live and waiting series this app set last: replaced, not reset, so other apps' stay. */
  private liveSeries: Record<string, string> | undefined;
  private waitingSeries: Record<string, string> | undefined;
  /** The results this app's checks have had: the series of repo_deploy_checks_total it has. */
  private readonly results = new Set<string>();
  consecutiveFailures = 0;
  checksDone = 0;

  constructor(private readonly maxAttempts: number, { families = new MetricFamilies(false), app }: { families?: MetricFamilies; app?: string } = {}) {
    this.families = families;
    this.registry = families.registry;
    this.labels = families.perApp && app !== undefined ? { app } : {};
  }

  /**
   * Takes the count of failed checks in a row from the check's report (the state's count); a
   * check that could not even start (the lock held, say) adds one to it.
   */
  record(outcome: CheckReport | Error, seconds: number, now: Date): void {
    const metrics = this.families;
    const labels = this.labels;
    const result = outcome instanceof Error ? 'error' : outcome.result;
    metrics.checks.inc({ ...labels, result });
    this.results.add(result);
    metrics.duration.observe(labels, seconds);
    this.checksDone++;
    if (result === 'updated') metrics.deploys.inc(labels);
    if (result === 'reverted') metrics.reverts.inc(labels);
    if (result === 'unchanged' || result === 'updated' || result === 'waiting') metrics.lastSuccess.set(labels, now.getTime() / 1000);
    this.consecutiveFailures = outcome instanceof Error ? this.consecutiveFailures + 1 : outcome.failedChecksInARow;
    metrics.failedInARow.set(labels, this.consecutiveFailures);
    if (outcome instanceof Error) return;
    if (this.waitingSeries) metrics.waiting.remove(this.waitingSeries);
    this.waitingSeries = undefined;
    metrics.waitingUntil.set(labels, outcome.result === 'waiting' && outcome.eligibleAt ? Date.parse(outcome.eligibleAt) / 1000 : 0);
    if (outcome.result === 'waiting') {
      this.waitingSeries = { ...labels, revision: outcome.revision, gate: outcome.gate };
      metrics.waiting.set(this.waitingSeries, 1);
    }
    if ((outcome.result === 'unchanged' || outcome.result === 'updated') && outcome.release) {
      if (this.liveSeries) metrics.live.remove(this.liveSeries);
      this.liveSeries = { ...labels, release: outcome.release, revision: outcome.revision ?? '' };
      metrics.live.set(this.liveSeries, 1);
    }
  }

  /** Removes this app's series (the app was removed from conf.d): a dashboard stops showing it. */
  forget(): void {
    const metrics = this.families;
    for (const result of this.results) metrics.checks.remove({ ...this.labels, result });
    for (const metric of [metrics.deploys, metrics.reverts, metrics.lastSuccess, metrics.failedInARow, metrics.paused, metrics.waitingUntil, metrics.driftFiles, metrics.duration]) metric.remove(this.labels);
    if (this.liveSeries) metrics.live.remove(this.liveSeries);
    if (this.waitingSeries) metrics.waiting.remove(this.waitingSeries);
  }

  /** The files the last drift check found different (verify-interval). */
  recordDrift(files: number): void {
    this.families.driftFiles.set(this.labels, files);
  }

  /** Whether an operator's pause is in force, read by the daemon after each check. */
  recordPause(paused: boolean): void {
    this.families.paused.set(this.labels, paused ? 1 : 0);
  }

  get healthy(): boolean {
    return this.consecutiveFailures < this.maxAttempts;
  }

  /** What /healthz says of this app. */
  get status(): 'starting' | 'ok' | 'unhealthy' {
    return this.healthy ? (this.checksDone === 0 ? 'starting' : 'ok') : 'unhealthy';
  }
}

/**
 * What one peer, or many, may take of the daemon: a connection cap (beyond it a connection is
 * closed at once), and time limits for the headers, the whole request and an idle connection.
 * Node's own request timeout was 300 s, with no cap: 1,500 connections each sending a 1 MiB
 * body took the daemon from 107 MB to 1.63 GB.
 */
export interface HttpLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
}

export const defaultHttpLimits: HttpLimits = { maxConnections: 128, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, idleTimeoutMs: 30_000 };

export interface HealthServer extends Server {
  /** Logs the webhook refusals counted in an interval that is over (or all of them, at a stop). */
  flushRefusals(final?: boolean): void;
}

/** One app as the HTTP server serves it: its metrics and its own POST /check?app=NAME. */
export interface AppRoute {
  name: string;
  metrics: AgentMetrics;
  webhook?: WebhookOptions;
}

/**
 * The apps of an agent in the directory form. `apps` is read at each request: the daemon changes
 * it in place when SIGHUP adds, removes or changes apps.
 */
export interface AppsHealth {
  registry: Registry;
  apps: AppRoute[];
}

export async function startHealthServer(
  address: { host: string; port: number },
  health: AgentMetrics | AppsHealth,
  log: Logger,
  webhook?: WebhookOptions,
  limits: HttpLimits = defaultHttpLimits,
): Promise<HealthServer> {
  // One budget of body bytes being read at once for every POST /check route: many apps must not multiply it.
  const bodyBudget = newBodyBudget(webhook?.maxBytesInFlight);
  const onCheck = webhook ? webhookHandler(webhook, bodyBudget) : undefined;
  const apps = health instanceof AgentMetrics ? undefined : health;
  // One handler per route, made at its first request and kept while the route is (its rate limit with it).
  const appHandlers = new WeakMap<AppRoute, WebhookHandler>();
  const madeHandlers = new Set<WebhookHandler>();
  const handlerOf = (route: AppRoute): WebhookHandler | undefined => {
    if (!route.webhook) return undefined;
    let handler = appHandlers.get(route);
    if (!handler) {
      handler = webhookHandler(route.webhook, bodyBudget);
      appHandlers.set(route, handler);
      madeHandlers.add(handler);
    }
    return handler;
  };
  const registry = health.registry;
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Node checks both timeouts on this period (30 s by default, longer than the limits).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  }, (request, response) => {
    const [path = '/', query = ''] = (request.url ?? '/').split('?', 2);
    const appName = apps ? new URLSearchParams(query).get('app') : null;
    const app = appName === null ? undefined : apps?.apps.find((candidate) => candidate.name === appName);
    if (appName !== null && !app) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: no app ${JSON.stringify(appName.slice(0, 64))} here\n`);
      return;
    }
    if (path === '/check') {
      const handler = app ? handlerOf(app) : onCheck;
      if (handler) return handler(request, response);
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: POST /check is off (no webhook-secret is set${app ? ` for app ${app.name}` : ''})\n`);
      return;
    }
    if (path === '/healthz') {
      const [status, body] = health instanceof AgentMetrics
        ? [health.status, { status: health.status, consecutiveFailedChecks: health.consecutiveFailures }]
        : app
          ? [app.metrics.status, { app: app.name, status: app.metrics.status, consecutiveFailedChecks: app.metrics.consecutiveFailures }]
          : appsHealth(health);
      response.writeHead(status === 'unhealthy' ? 503 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: Error) => response.writeHead(500).end(error.message),
      );
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
  });
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, address)));
    server.listen(address.port, address.host, resolve);
  });
  const bound = server.address() as AddressInfo;
  const anyWebhook = Boolean(onCheck) || Boolean(apps?.apps.some((candidate) => candidate.webhook));
  log.info(`serving /healthz, /metrics${anyWebhook ? ' and POST /check' : ''} on http://${bound.address}:${bound.port}${anyWebhook ? '' : '; POST /check (deploy on push) is off: set webhook-secret to turn it on'}`);
  return Object.assign(server, {
    flushRefusals: (final = false) => {
      onCheck?.flushRefusals(final);
      for (const handler of madeHandlers) handler.flushRefusals(final);
    },
  });
}

/**
 * /healthz of several apps: each app's status, and the agent's: unhealthy (503) when any app is,
 * so a monitor that reads only the code still hears of it.
 */
function appsHealth(health: AppsHealth): ['starting' | 'ok' | 'unhealthy', object] {
  const statuses = health.apps.map((app) => app.metrics.status);
  const status = statuses.includes('unhealthy') ? 'unhealthy' : statuses.includes('starting') ? 'starting' : 'ok';
  const apps = Object.fromEntries(health.apps.map((app) => [app.name, { status: app.metrics.status, consecutiveFailedChecks: app.metrics.consecutiveFailures }]));
  return [status, { status, apps }];
}

/** A port that cannot be had is a setting to change (exit 2, which the unit does not restart on), not an internal error. */
function listenError(error: NodeJS.ErrnoException, address: { host: string; port: number }): Error {
  const where = `http-listen = ${address.host}:${address.port}`;
  if (error.code === 'EADDRINUSE') return usageError(`${where}: the port is already in use by another process`, `choose another port for http-listen, or stop what listens there (ss -ltnp 'sport = :${address.port}' names it)`);
  if (error.code === 'EADDRNOTAVAIL') return usageError(`${where}: this host has no address ${address.host}`, 'give one of its addresses (ip -brief address), or 127.0.0.1');
  if (error.code === 'EACCES') return usageError(`${where}: ports below 1024 need root`, 'choose a port above 1024, or run the agent as root');
  return error;
}
