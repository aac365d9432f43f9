// Optional http-listen endpoint: /healthz for a load balancer or a fleet monitor, /metrics in
// the Prometheus text format (prom-client), and POST /check when a webhook secret is set.
// Unhealthy once max-attempts checks in a row failed, whenever that happens, not only before the
// first success.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { usageError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { webhookHandler, type WebhookOptions } from './webhook.js';
import type { CheckReport } from '../core/agent-context.js';

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly checks = new Counter({ name: 'repo_deploy_checks_total', help: 'Checks of the remote, by result', labelNames: ['result'], registers: [this.registry] });
  private readonly deploys = new Counter({ name: 'repo_deploy_deploys_total', help: 'Releases that went live', registers: [this.registry] });
  private readonly reverts = new Counter({ name: 'repo_deploy_reverts_total', help: 'Updates reverted after a post-update hook failed', registers: [this.registry] });
  private readonly lastSuccess = new Gauge({ name: 'repo_deploy_last_success_timestamp_seconds', help: 'When a check last succeeded (up to date or updated)', registers: [this.registry] });
  private readonly failedInARow = new Gauge({ name: 'repo_deploy_consecutive_failed_checks', help: 'Checks that failed in a row', registers: [this.registry] });
  private readonly live = new Gauge({ name: 'repo_deploy_live_release_info', help: 'The live release and its revision', labelNames: ['release', 'revision'], registers: [this.registry] });
  private readonly paused = new Gauge({ name: 'repo_deploy_paused', help: '1 while an operator has paused deploys (repo-deploy pause)', registers: [this.registry] });
  private readonly waiting = new Gauge({ name: 'repo_deploy_waiting_revision_info', help: 'A new revision that may not be deployed yet, and what it waits for (paused, deploy-window, min-age)', labelNames: ['revision', 'gate'], registers: [this.registry] });
  private readonly waitingUntil = new Gauge({ name: 'repo_deploy_waiting_eligible_timestamp_seconds', help: 'When the waiting revision may be deployed (the deploy window opens, min-age is reached); 0 when unknown or nothing waits', registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'repo_deploy_check_duration_seconds',
    help: 'How long a check (and update) took',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  consecutiveFailures = 0;
  checksDone = 0;

  constructor(private readonly maxAttempts: number) {}

  /**
   * Takes the count of failed checks in a row from the check's report (the state's count); a
   * check that could not even start (the lock held, say) adds one to it.
   */
  record(outcome: CheckReport | Error, seconds: number, now: Date): void {
    const result = outcome instanceof Error ? 'error' : outcome.result;
    this.checks.inc({ result });
    this.duration.observe(seconds);
    this.checksDone++;
    if (result === 'updated') this.deploys.inc();
    if (result === 'reverted') this.reverts.inc();
    if (result === 'unchanged' || result === 'updated' || result === 'waiting') this.lastSuccess.set(now.getTime() / 1000);
    this.consecutiveFailures = outcome instanceof Error ? this.consecutiveFailures + 1 : outcome.failedChecksInARow;
    this.failedInARow.set(this.consecutiveFailures);
    if (outcome instanceof Error) return;
    this.waiting.reset();
    this.waitingUntil.set(outcome.result === 'waiting' && outcome.eligibleAt ? Date.parse(outcome.eligibleAt) / 1000 : 0);
    if (outcome.result === 'waiting') this.waiting.set({ revision: outcome.revision, gate: outcome.gate }, 1);
    if ((outcome.result === 'unchanged' || outcome.result === 'updated') && outcome.release) {
      this.live.reset();
      this.live.set({ release: outcome.release, revision: outcome.revision ?? '' }, 1);
    }
  }

  /** Whether an operator's pause is in force, read by the daemon after each check. */
  recordPause(paused: boolean): void {
    this.paused.set(paused ? 1 : 0);
  }

  get healthy(): boolean {
    return this.consecutiveFailures < this.maxAttempts;
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

export async function startHealthServer(
  address: { host: string; port: number },
  metrics: AgentMetrics,
  log: Logger,
  webhook?: WebhookOptions,
  limits: HttpLimits = defaultHttpLimits,
): Promise<HealthServer> {
  const onCheck = webhook ? webhookHandler(webhook) : undefined;
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // Node checks both timeouts on this period (30 s by default, longer than the limits).
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  }, (request, response) => {
    const path = (request.url ?? '/').replace(/\?.*$/, '');
    if (path === '/check') {
      if (onCheck) return onCheck(request, response);
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: POST /check is off (no webhook-secret is set)\n');
      return;
    }
    if (path === '/healthz') {
      const body = JSON.stringify({
        status: metrics.healthy ? (metrics.checksDone === 0 ? 'starting' : 'ok') : 'unhealthy',
        consecutiveFailedChecks: metrics.consecutiveFailures,
      });
      response.writeHead(metrics.healthy ? 200 : 503, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
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
  log.info(`serving /healthz, /metrics${webhook ? ' and POST /check' : ''} on http://${bound.address}:${bound.port}${webhook ? '' : '; POST /check (deploy on push) is off: set webhook-secret to turn it on'}`);
  return Object.assign(server, { flushRefusals: (final = false) => onCheck?.flushRefusals(final) });
}

/** A port that cannot be had is a setting to change (exit 2, which the unit does not restart on), not an internal error. */
function listenError(error: NodeJS.ErrnoException, address: { host: string; port: number }): Error {
  const where = `http-listen = ${address.host}:${address.port}`;
  if (error.code === 'EADDRINUSE') return usageError(`${where}: the port is already in use by another process`, `choose another port for http-listen, or stop what listens there (ss -ltnp 'sport = :${address.port}' names it)`);
  if (error.code === 'EADDRNOTAVAIL') return usageError(`${where}: this host has no address ${address.host}`, 'give one of its addresses (ip -brief address), or 127.0.0.1');
  if (error.code === 'EACCES') return usageError(`${where}: ports below 1024 need root`, 'choose a port above 1024, or run the agent as root');
  return error;
}
