// repo-deploy plan [--json]: what the next check would do, shown before it does it. The check's
// own path is run as a preview (remote, held-back state, pause, window, min-age; nothing saved,
// no fleet slot), and the revision it would deploy is staged apart in the cache, compared with
// the live release's manifest file by file, and thrown away: nothing live changes. For git, the
// commits between the live revision and the new one are listed.
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentContext, CheckOutcome } from '../core/agent-context.js';
import { cacheLayoutFor, planStagingPrefix } from '../core/cache-layout.js';
import { layoutFor } from '../core/release-layout.js';
import type { PendingRevision } from '../core/remote-contract.js';
import { shortRevision } from '../core/short-revision.js';
import { previewCheck } from '../check/update.js';
import { diffEntries, readManifestEntries, type FileChange } from '../history/files-changed.js';
import { listHooks } from '../release/hooks.js';
import { readLiveRelease } from '../release/releases.js';
import { loadState } from '../release/state.js';
import { describeTree, manifestPath } from '../verify/manifest.js';
import { counted } from '../base/counted.js';
import { pausePoint } from '../base/test-pause.js';
import { printable } from '../base/printable.js';

const mostCommits = 50;
const filesShown = 50;

export interface Plan {
  outcome: CheckOutcome['result'];
  revisionFrom?: string;
  revisionTo?: string;
  description?: string;
  /** Why it would not be deployed now (a gate, a hold), if so. */
  heldBy?: { gate: string; reason: string };
  files?: { added: number; changed: number; removed: number; bytesAdded: number; bytesRemoved: number; list: FileChange[] };
  commits?: string[];
  hooks: { preUpdate: string[]; postUpdate: string[]; healthCheck?: string };
  error?: string;
}

export async function planCommand(context: AgentContext, json: boolean, print: (line: string) => void): Promise<number> {
  const { settings } = context;
  const layout = layoutFor(settings.local);
  const live = await readLiveRelease(layout);
  const liveRevision = (await loadState(settings.cache)).current?.revision || undefined;
  const plan: Plan = { outcome: 'unchanged', revisionFrom: liveRevision, hooks: { preUpdate: await listHooks(settings.preHooks), postUpdate: await listHooks(settings.postHooks), healthCheck: settings.healthCheck } };
  const previewStage = async (pending: PendingRevision) => {
    plan.description = pending.description;
    const directory = join(cacheLayoutFor(settings.cache).root, `${planStagingPrefix}${randomBytes(6).toString('hex')}`);
    await mkdir(directory, { mode: 0o700 });
    try {
      const staged = await pending.stage(directory);
      await pausePoint('plan staged');
      const after = await describeTree(directory, staged?.fileHashes);
      const before = live ? await readManifestEntries(manifestPath(layout.releasesDirectory, live)) : [];
      const list = diffEntries(before ?? [], after);
      const count = (kind: FileChange['kind']) => list.filter((change) => change.kind === kind).length;
      plan.files = {
        added: count('added'),
        changed: count('changed'),
        removed: count('removed'),
        bytesAdded: list.reduce((total, change) => total + Math.max(0, (change.sizeAfter ?? 0) - (change.sizeBefore ?? 0)), 0),
        bytesRemoved: list.reduce((total, change) => total + Math.max(0, (change.sizeBefore ?? 0) - (change.sizeAfter ?? 0)), 0),
        list,
      };
      if (liveRevision && pending.commitsSince) plan.commits = await pending.commitsSince(liveRevision, mostCommits);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  };
  const outcome = await previewCheck({ ...context, previewStage });
  plan.outcome = outcome.result;
  if ('revision' in outcome && outcome.revision) plan.revisionTo = outcome.revision;
  if (outcome.result === 'would-update') plan.description = outcome.description;
  if (outcome.result === 'waiting') plan.heldBy = { gate: outcome.gate, reason: outcome.reason };
  if (outcome.result === 'held-back') plan.heldBy = { gate: 'held-back', reason: 'held back after repeated failures ("repo-deploy retry" tries it again)' };
  if (outcome.result === 'unchanged' && outcome.heldBackSinceRollback) plan.heldBy = { gate: 'rolled-back', reason: `revision ${shortRevision(outcome.heldBackSinceRollback)} is held back since a rollback` };
  if (outcome.result === 'failed' || outcome.result === 'refused') plan.error = outcome.error.message;
  if (json) print(JSON.stringify(plan, null, 2));
  // Commit subjects and file names are the pusher's words: printed escaped.
  else describePlan(plan, (line) => print(printable(line)));
  return outcome.result === 'failed' || outcome.result === 'refused' ? outcome.error.exitCode : 0;
}

function describePlan(plan: Plan, print: (line: string) => void): void {
  const from = plan.revisionFrom ? shortRevision(plan.revisionFrom) : 'nothing';
  if (plan.error) {
    print(`the next check would fail: ${plan.error}`);
    return;
  }
  if (plan.outcome === 'unchanged' && !plan.heldBy) {
    print(`up to date: the remote has the live revision ${from}; the next check would change nothing`);
    return;
  }
  print(`revision ${from} -> ${plan.revisionTo ? shortRevision(plan.revisionTo) : '?'}${plan.description ? ` (${plan.description})` : ''}`);
  print(plan.heldBy ? `not deployed at the next check: ${plan.heldBy.reason}` : 'deployed at the next check');
  if (plan.commits) {
    print(`commits (${plan.commits.length}${plan.commits.length === mostCommits ? '+' : ''}):`);
    for (const commit of plan.commits) print(`  ${commit}`);
  }
  if (plan.files) {
    const { added, changed, removed, bytesAdded, bytesRemoved, list } = plan.files;
    print(`files: ${added} added, ${changed} changed, ${removed} removed (+${counted(bytesAdded, 'byte')}, -${counted(bytesRemoved, 'byte')})`);
    const sign = { added: '+', changed: '~', removed: '-' } as const;
    for (const change of list.slice(0, filesShown)) {
      const size = change.kind === 'changed' ? `${change.sizeBefore ?? '-'} -> ${change.sizeAfter ?? '-'} B` : `${change.sizeAfter ?? change.sizeBefore ?? '-'} B`;
      print(`  ${sign[change.kind]} ${change.path} (${size})`);
    }
    if (list.length > filesShown) print(`  … and ${list.length - filesShown} more (--json lists them all)`);
  }
  print(`pre-update hooks: ${plan.hooks.preUpdate.join(', ') || 'none'}; post-update hooks: ${plan.hooks.postUpdate.join(', ') || 'none'}; health gate: ${plan.hooks.healthCheck ?? 'none'}`);
}
