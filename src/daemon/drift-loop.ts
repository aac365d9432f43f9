// verify-interval: one app's drift checks, beside its check loop and without its lock (they only
// read; between walks the tree is watched, see verify/drift.ts). Each compares the live release with its manifest (verify/drift.ts), sets
// repo_deploy_drift_files, and tells the history (and so the notifications) when what differs
// changes; with drift-action = redeploy it asks the app's next check to deploy again. A result
// about a release that stopped being live during the walk is dropped.
import { messageOf } from '../base/errors.js';
import type { AgentContext } from '../core/agent-context.js';
import { layoutFor, releasePath } from '../core/release-layout.js';
import { tell } from '../history/record.js';
import { readLiveRelease } from '../release/releases.js';
import { DriftWatcher, type DriftReport } from '../verify/drift.js';
import { manifestPath } from '../verify/manifest.js';
import type { DaemonClock } from './daemon.js';
import type { AgentMetrics } from './health-server.js';

const sampleSize = 10;

export interface DriftLoopTools {
  context: Omit<AgentContext, 'signal'>;
  clock: DaemonClock;
  metrics: AgentMetrics;
  stopping: AbortSignal;
  /** drift-action = redeploy: asks for a check that deploys `release` again. */
  redeploy(release: string): void;
  /** After a drift is told: its notification, if any, is sent. */
  told(): void;
}

export async function runDriftLoop({ context, clock, metrics, stopping, redeploy, told }: DriftLoopTools): Promise<void> {
  const { settings, log } = context;
  if (settings.verifyIntervalMs === 0) return;
  const watcher = new DriftWatcher(() => clock.now().getTime());
  const isIgnored = settings.verifyIgnore.length ? (await import('../base/lazy/picomatch.js')).picomatch([...settings.verifyIgnore], { dot: true }) : () => false;
  let lastTold = '';
  stopping.addEventListener('abort', () => watcher.close(), { once: true });
  while (!stopping.aborted) {
    await clock.sleep(settings.verifyIntervalMs, stopping);
    if (stopping.aborted) break;
    const layout = layoutFor(settings.local);
    try {
      const live = await readLiveRelease(layout);
      if (live === undefined) continue;
      const report = await watcher.check(releasePath(layout, live), live, manifestPath(layout.releasesDirectory, live), isIgnored);
      if ((await readLiveRelease(layout)) !== live) continue; // swapped while it was read
      const count = report.changed.length + report.missing.length + report.extra.length;
      metrics.recordDrift(count);
      log.debug(report.walked ? `drift check of release ${live}: ${count} of ${report.entries} entries differ (${report.hashed} files hashed)` : `drift check of release ${live}: nothing stirred in the tree since the last walk (${count} entries differed then)`);
      const said = count === 0 ? '' : `${live}:${JSON.stringify([report.changed, report.missing, report.extra])}`;
      if (said === lastTold) continue;
      lastTold = said;
      if (count === 0) {
        log.info(`release ${live} matches its manifest again`);
        continue;
      }
      log.warn(`the live tree drifted from release ${live}: ${describe(report)}`, { release: live });
      const action = settings.driftAction === 'redeploy' ? 'redeploy' : 'report';
      await tell({ ...context, signal: stopping, trigger: 'drift check' }, { event: 'drift', release: live, files: { changed: report.changed.length, missing: report.missing.length, extra: report.extra.length }, sample: { changed: report.changed.slice(0, sampleSize), missing: report.missing.slice(0, sampleSize), extra: report.extra.slice(0, sampleSize) }, action, exitCode: 8 });
      told();
      if (action === 'redeploy') redeploy(live);
    } catch (error) {
      // A release pruned or swapped under the walk, a manifest an older agent did not write.
      log.debug(`drift check skipped: ${messageOf(error)}`);
    }
  }
}

function describe(report: DriftReport): string {
  const parts = [
    ...report.changed.slice(0, 3).map((path) => `changed ${path}`),
    ...report.missing.slice(0, 3).map((path) => `missing ${path}`),
    ...report.extra.slice(0, 3).map((path) => `extra ${path}`),
  ];
  return `${report.changed.length} changed, ${report.missing.length} missing, ${report.extra.length} extra (${parts.slice(0, 4).join(', ')})`;
}
