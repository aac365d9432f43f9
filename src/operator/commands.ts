// The commands beside the default run: status, releases, rollback, retry, check-config, adopt,
// verify, pause and resume. Each reads or changes the same state the agent keeps, under the same
// lock where it changes anything (a pause has a file of its own, see pause.ts).
import { constants } from 'node:fs';
import { access, lstat, realpath, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { requireRemote } from '../settings/config.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { DeployError, ExitCode, hostError, systemErrorCode, usageError, withoutRetryHint } from '../base/errors.js';
import { holdBackRolledAway, releaseHeldBack, shortRevision } from '../release/failures.js';
import { windowStateAt } from '../core/deploy-window.js';
import type { CountOrPercent } from '../core/settings-schema.js';
import { listHooks } from '../release/hooks.js';
import { switchSteps } from '../release/switch-steps.js';
import { currentLockHolder } from '../release/lock.js';
import { operatorName } from '../base/operator-name.js';
import { resolveRevision } from './revision-prefix.js';
import { clearPause, describePause, readPause, writePause } from '../gates/pause.js';
import { layoutFor, listReleaseDirectories, newReleaseId, type Layout, pointLiveAt, readLiveRelease, releaseExists, releasePath } from '../release/releases.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import { validateSchedule } from '../settings/schedule.js';
import { loadState, recordLiveRelease, releaseStatus, saveState, type AgentState } from '../release/state.js';
import { pausePoint } from '../base/test-pause.js';
import { switchRelease } from '../release/switch-release.js';
import { compareWithManifest, manifestPath, writeManifest } from '../verify/manifest.js';
import type { AgentContext, CheckOutcome } from '../core/agent-context.js';
import type { Remote } from '../core/remote.js';
import { asDeployError } from '../release/switch-release.js';
import { unverifiedRefusal } from '../verify/refusal.js';
import { tell } from '../history/record.js';
import { previewCheck } from '../check/update.js';
import { prepare, pruneReleases, withLockedState } from '../release/locked-session.js';

type Print = (line: string) => void;

export async function statusCommand(context: AgentContext, json: boolean, print: Print): Promise<void> {
  const { settings } = context;
  const state = await loadState(settings.cache);
  const layout = layoutFor(settings.local);
  let live = await readLiveRelease(layout).catch((error: Error) => `unreadable: ${error.message}`);
  if (live && !live.startsWith('unreadable') && !(await releaseExists(layout, live))) live = `MISSING: ${live} (its directory is gone; the next check redeploys)`;
  const pause = await readPause(cacheLayoutFor(settings.cache));
  const holder = await currentLockHolder(settings.cache);
  const window = settings.deployWindow.length > 0 ? await windowStateAt(settings.deployWindow, settings.deployWindowTimezone, context.now()) : undefined;
  const report = {
    live: live === undefined ? null : { release: live, revision: revisionOfRelease(state, live) ?? null },
    previous: state.previous ? { release: state.previous.release, revision: state.previous.revision } : null,
    remote: state.remote ?? settings.remote?.display ?? null,
    lastCheck: state.lastCheck ?? null,
    lastSuccessAt: state.lastSuccessAt ?? null,
    lastError: state.lastError ?? null,
    consecutiveFailedChecks: state.consecutiveFailedChecks,
    heldBack: state.heldBack ? { revision: state.heldBack.revision, reason: state.heldBack.reason, since: state.heldBack.since, lastError: state.heldBack.lastError ?? null } : null,
    failures: state.failures,
    interruptedSwitch: state.inProgress ?? null,
    switchRunning: state.inProgress !== undefined && holder !== undefined,
    paused: pause ?? null,
    waiting: state.waiting ?? null,
    deployWindow: window ? (window.open ? { open: true, closesAt: window.closesAt.toISOString() } : { open: false, opensAt: window.opensAt?.toISOString() ?? null }) : null,
  };
  if (json) return print(JSON.stringify(report, null, 2));
  const nothingLive = state.lastCheck?.result === 'reverted' ? `NOTHING IS LIVE: the first deploy was reverted at ${state.lastCheck.at} and there was no release before it` : 'nothing deployed';
  print(`live:           ${report.live ? `${report.live.release} (revision ${shortRevision(report.live.revision ?? '')})` : nothingLive}`);
  print(`previous:       ${report.previous ? `${report.previous.release} (revision ${shortRevision(report.previous.revision)})` : 'none'}`);
  print(`remote:         ${report.remote ?? 'not set'}`);
  print(`last check:     ${report.lastCheck ? `${report.lastCheck.at} ${report.lastCheck.result}` : 'never'}`);
  print(`last success:   ${report.lastSuccessAt ?? 'never'}`);
  print(`last error:     ${report.lastError ? `${report.lastError.at} ${report.lastError.message}` : 'none'}`);
  print(`failed checks:  ${report.consecutiveFailedChecks} in a row`);
  print(`held back:      ${report.heldBack ? `${shortRevision(report.heldBack.revision)} (${describeHold(state)}); "repo-deploy retry" tries it again` : 'none'}`);
  print(`paused:         ${pause ? `${describePause(pause)} ("repo-deploy resume" ends it)` : 'no'}`);
  print(`waiting:        ${state.waiting ? `revision ${shortRevision(state.waiting.revision)} ${state.waiting.reason}` : 'none'}`);
  if (window) print(`deploy window:  ${window.open ? `open until ${window.closesAt.toISOString()}` : `closed${window.opensAt ? `, opens at ${window.opensAt.toISOString()}` : ''}`}`);
  const switching = report.interruptedSwitch;
  if (switching && holder) {
    const step = switchSteps[switching.step].says;
    print(`in progress:    ${switching.kind} to ${switching.release} (revision ${shortRevision(switching.revision)}), now in ${step}, by process ${holder.pid} since ${switching.startedAt}`);
  } else if (switching) {
    print(`interrupted:    ${switching.kind} to ${switching.release} during ${switching.step}; the next check finishes or undoes it`);
  }
}

/**
 * The revision of the release the live link points at. During a switch (or after one a crash
 * interrupted) the link may already point at the new release while the state's current is still
 * the old one: the journal, then the list of releases, say which revision each release holds.
 */
function revisionOfRelease(state: AgentState, release: string): string | undefined {
  const journal = state.inProgress;
  const revision =
    release === state.current?.release ? state.current.revision
    : release === journal?.release ? journal.revision
    : release === journal?.previousRelease ? journal.previousRevision
    : state.releases.find((record) => record.id === release)?.revision;
  return revision || undefined;
}

export async function releasesCommand(context: AgentContext, json: boolean, print: Print): Promise<void> {
  const state = await loadState(context.settings.cache);
  const layout = layoutFor(context.settings.local);
  const live = await readLiveRelease(layout).catch(() => undefined);
  const onDisk = new Set(await listReleaseDirectories(layout));
  const rows = state.releases.map((release) => ({
    ...release,
    status: releaseStatus(state, release),
    live: release.id === live,
    onDisk: onDisk.has(release.id),
  }));
  if (json) return print(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return print('no releases');
  for (const row of [...rows].reverse()) {
    print(`${row.live ? '*' : ' '} ${row.id}  revision ${shortRevision(row.revision)}  deployed ${row.deployedAt ?? '-'}  ${row.live ? 'live' : row.status}${row.onDisk ? '' : ' (missing on disk)'}`);
  }
}

/** Why and since when a revision is held back: "failed 3 times since <first failure>; last: <reason>". */
function describeHold(state: AgentState): string {
  const held = state.heldBack!;
  const failures = state.failures.find((failure) => failure.revision === held.revision);
  if (held.reason === 'failed' && failures) return `failed ${failures.count} times since ${held.since}; last at ${failures.lastAt}: ${failures.lastError}`;
  return `${held.reason} since ${held.since}`;
}

/** Swaps back to the previous (or a named) release with the hooks in phase "rollback". */
export async function rollbackCommand(context: AgentContext, requested: string | undefined, force: boolean, print: Print): Promise<void> {
  await withLockedState(context, async (state, layout) => {
    const liveRelease = await prepare(context, layout, state);
    const targetId = requested === undefined ? state.previous?.release : resolveRelease(requested, state.releases);
    if (!targetId) throw usageError('there is no previous release to roll back to', 'name one: repo-deploy releases lists them');
    const target = state.releases.find((release) => release.id === targetId);
    const onDisk = (await listReleaseDirectories(layout)).includes(targetId);
    if (!target || !onDisk) throw usageError(`release ${targetId} is not a complete release of this agent`, 'repo-deploy releases lists the ones that can be rolled back to');
    if (targetId === liveRelease) throw usageError(`release ${targetId} is already live`);
    const unverified = unverifiedRefusal(context.settings, target);
    if (unverified) {
      throw new DeployError('verification', `refusing to roll back: ${unverified}`, { hint: 'roll back to a release deployed while verification was on (repo-deploy releases), or deploy a signed revision; --force does not override this' });
    }
    if (!force) await requireIntact(context, layout, targetId);
    const rolledAway = state.current;
    const result = await switchRelease(context, layout, state, {
      kind: 'rollback',
      release: targetId,
      revision: target.revision,
      previousRelease: liveRelease,
      previousRevision: rolledAway?.revision ?? '',
      removeOnFailure: false,
    });
    const told = { release: targetId, previousRelease: liveRelease, revisionFrom: rolledAway?.revision, revisionTo: target.revision, forced: force || undefined };
    if (!result.switched) {
      await tell(context, { event: 'rollback', ...told, stage: result.stage, error: result.error.message, exitCode: result.stage === 'pre-update' ? ExitCode.blockedByPreHook : ExitCode.revertedAfterPostHook });
      throw new DeployError(result.stage === 'pre-update' ? 'pre-hook' : 'post-hook', `rollback to ${targetId} ${result.stage === 'pre-update' ? 'blocked' : 'reverted'}: ${result.error.message}`);
    }
    recordLiveRelease(state, { release: targetId, revision: target.revision, remoteState: {} }, 'rolled-back');
    // A revision already held back (it failed max-attempts times, or was refused) is what the
    // remote offers now: it stays held, or the next check would try it again. Otherwise the
    // revision rolled away from stays away until the remote moves on.
    const alreadyHeld = state.heldBack && state.heldBack.revision !== rolledAway?.revision ? state.heldBack : undefined;
    if (!alreadyHeld && rolledAway?.revision) holdBackRolledAway(state, rolledAway, context.now());
    // Committed on disk before it is told (as an update is: check/update.ts), so that a kill -9
    // after the history says "rollback" cannot make the next start undo it.
    await saveState(context.settings.cache, state).catch(() => undefined);
    await tell(context, { event: 'rollback', ...told, exitCode: ExitCode.ok });
    await pausePoint('rolled back');
    await pruneReleases(layout, state, context.settings.keepReleases, context.log);
    const held = state.heldBack ? `revision ${shortRevision(state.heldBack.revision)} ${alreadyHeld ? `stays held back (${alreadyHeld.reason})` : 'is held back'} until the remote changes or "repo-deploy retry"` : 'nothing is held back';
    print(`rolled back to ${targetId} (revision ${shortRevision(target.revision)}); ${held}`);
  });
}

/**
 * The release an operator names: its id, a prefix of its id, or (as log lines show it) a prefix of
 * its revision when one release holds that revision; several is a usage error naming them.
 */
function resolveRelease(typed: string, releases: AgentState['releases']): string {
  if (releases.some((release) => release.id === typed)) return typed;
  const byId = releases.filter((release) => release.id.startsWith(typed));
  if (byId.length === 1) return byId[0]!.id;
  const revision = byId.length === 0 ? resolveRevision(typed, releases.map((release) => release.revision)) : undefined;
  const matches = byId.length > 0 ? byId : releases.filter((release) => release.revision === revision);
  if (matches.length > 1) throw usageError(`"${typed}" names ${matches.length} releases (${matches.map((release) => release.id).join(', ')})`, 'give the whole release id');
  return matches[0]?.id ?? typed;
}

/** A release to roll back to must still hold what was deployed (files deleted by hand would go live). */
async function requireIntact(context: AgentContext, layout: Layout, id: string): Promise<void> {
  let differences;
  try {
    differences = await compareWithManifest(releasePath(layout, id), manifestPath(layout.releasesDirectory, id), context.settings.verifyIgnore);
  } catch (error) {
    if (systemErrorCode(error) !== 'ENOENT') throw error;
    context.log.warn(`release ${id} has no manifest (made by an older repo-deploy); it cannot be checked before the rollback`);
    return;
  }
  const total = differences.changed.length + differences.missing.length + differences.extra.length;
  if (total === 0) return;
  const sample = [...differences.missing.map((path) => `missing ${path}`), ...differences.changed.map((path) => `changed ${path}`), ...differences.extra.map((path) => `extra ${path}`)].slice(0, 3).join(', ');
  throw new DeployError('verification', `release ${id} is not what was deployed (${differences.missing.length} missing, ${differences.changed.length} changed, ${differences.extra.length} extra: ${sample}); refusing to roll back to it`, {
    hint: 'roll back to another release (repo-deploy releases), or use --force to roll back to it anyway',
  });
}

export async function retryCommand(context: AgentContext, print: Print): Promise<void> {
  await withLockedState(context, async (state: AgentState) => {
    const held = releaseHeldBack(state);
    state.failures = [];
    state.consecutiveFailedChecks = 0;
    await tell(context, { event: 'retry', revisionTo: held?.revision, exitCode: ExitCode.ok });
    print(held ? `revision ${shortRevision(held.revision)} is no longer held back; the next check tries it (send SIGHUP to a running agent to check now)` : 'nothing was held back; failure counts cleared');
  });
}

/** Re-checks the live tree against the manifest made when its release was staged. */
export async function verifyCommand(context: AgentContext, print: Print): Promise<boolean> {
  const layout = layoutFor(context.settings.local);
  const live = await readLiveRelease(layout);
  if (!live) throw usageError(`nothing is deployed at ${layout.live}`);
  const path = manifestPath(layout.releasesDirectory, live);
  const differences = await compareWithManifest(join(layout.releasesDirectory, live), path, context.settings.verifyIgnore).catch((error: unknown) => {
    if (systemErrorCode(error) === 'ENOENT') throw usageError(`release ${live} has no manifest (it was deployed by an older repo-deploy)`, 'the next update writes one');
    throw error;
  });
  for (const path of differences.changed) print(`changed: ${path}`);
  for (const path of differences.missing) print(`missing: ${path}`);
  for (const path of differences.extra) print(`extra:   ${path}`);
  const total = differences.changed.length + differences.missing.length + differences.extra.length;
  print(total === 0 ? `release ${live} is intact: every file matches its manifest` : `release ${live} differs from what was deployed: ${total} difference${total > 1 ? 's' : ''}`);
  return total === 0;
}

/** Validates the settings and asks the remote what it has, without deploying or changing the state. */
/**
 * Checks every part a run needs (settings, remote, schedule, live path, cache, hooks, fleet) and
 * what the next check would do, each on a line of its own, ok or FAILED with the reason; one
 * failure does not hide the next. Returns the exit status of the first failure, or 0.
 */
export async function checkConfigCommand(context: AgentContext, print: Print): Promise<number> {
  const { settings } = context;
  const failures: Array<{ label: string; error: DeployError }> = [];
  const part = async (label: string, check: () => Promise<string>): Promise<boolean> => {
    try {
      print(`ok      ${label}: ${await check()}`);
      return true;
    } catch (error) {
      const failure = hostError(error) ?? asDeployError(error);
      failures.push({ label, error: failure });
      print(`FAILED  ${label}: ${withoutRetryHint(failure.message)}`);
      return false;
    }
  };
  const pathProblem = (key: string) => settings.pathProblems.find((problem) => problem.key === key)?.error;
  await part('config', async () => `${settings.configPath}${(await pathExists(settings.configPath)) ? '' : ' (absent: defaults, environment and flags only)'}`);
  for (const key of ['ssh-key', 'ssh-known-hosts', 'fleet-tls-ca', 'fleet-tls-cert', 'fleet-tls-key']) {
    const problem = pathProblem(key);
    if (problem) await part(key, () => Promise.reject(problem));
  }
  let remote: Remote | undefined;
  await part('remote', async () => {
    remote = requireRemote(settings);
    return `${remote.display} (${remote.kind})`;
  });
  if (remote?.kind === 'oci') {
    const oci = remote;
    await part('oci', async () => (await import('../remotes/oci.js')).describeOciSettings(oci, settings, context.env));
  }
  await part('schedule', async () => {
    await validateSchedule(settings.schedule);
    return settings.schedule;
  });
  const layout = layoutFor(settings.local);
  const liveUsable = await part('live', async () => {
    const live = await readLiveRelease(layout); // a real directory at the live path is refused here
    await writableHere(dirname(settings.local)); // where the releases and the link are made
    return `${settings.local}${live ? ` -> releases/${live}` : ' (nothing deployed yet)'}`;
  });
  const cacheUsable = await part('cache', async () => `${settings.cache}${await writableHere(settings.cache)}`);
  for (const [phase, directory] of [['pre-update', settings.preHooks], ['post-update', settings.postHooks]] as const) {
    await part(`${phase} hooks`, async () => {
      const problem = pathProblem(phase === 'pre-update' ? 'pre-hooks' : 'post-hooks');
      if (problem) throw problem;
      const hooks = await listHooks(directory, context.log, { strict: true });
      return `${directory}: ${hooks.length ? hooks.join(', ') : 'none'}`;
    });
  }
  for (const [label, check] of operatorControlParts(context)) await part(label, check);
  if (remote && liveUsable && cacheUsable) await part('found', async () => describePreview(await previewCheck(context)));
  if (failures.length === 0) return ExitCode.ok;
  process.stderr.write(`repo-deploy: check-config: ${failures.length} ${failures.length === 1 ? 'part' : 'parts'} failed (${failures.map((failure) => failure.label).join(', ')}); each FAILED line above says why and what to do\n`);
  return failures[0]!.error.exitCode;
}

const pathExists = (path: string) => access(path).then(() => true, () => false);

/** " (writable)", or why this user cannot make or write the directory (a permission error, thrown). */
async function writableHere(directory: string): Promise<string> {
  for (let candidate = directory; ; candidate = dirname(candidate)) {
    try {
      await access(candidate, constants.W_OK);
      return candidate === directory ? ' (writable)' : ` (made at the first run, in ${candidate})`;
    } catch (error) {
      if (systemErrorCode(error) !== 'ENOENT' || candidate === dirname(candidate)) throw Object.assign(error as Error, { path: candidate, syscall: 'open' });
    }
  }
}

/** The preview of the next check, in an operator's words; a failure or a refusal is thrown. */
function describePreview(outcome: CheckOutcome): string {
  switch (outcome.result) {
    case 'unchanged':
      if (outcome.heldBackSinceRollback) return `the remote is reachable; its revision ${shortRevision(outcome.heldBackSinceRollback)} is held back since a rollback ("repo-deploy retry" deploys it)`;
      return outcome.revision ? `the remote is reachable and has the live revision ${shortRevision(outcome.revision)}` : 'the remote is reachable and has nothing new';
    case 'would-update':
      return `the remote is reachable; revision ${shortRevision(outcome.revision)} (${outcome.description}) would be deployed at the next check`;
    case 'waiting':
      return `the remote is reachable; revision ${shortRevision(outcome.revision)} is not deployed yet: it ${outcome.reason}`;
    case 'held-back':
      return `the remote is reachable; its revision ${shortRevision(outcome.revision)} is held back after repeated failures and is not tried again until the remote changes or "repo-deploy retry"`;
    case 'failed':
    case 'refused':
      throw outcome.error;
    default:
      return `the next check would end: ${outcome.result}`;
  }
}

/**
 * Makes a plain directory at the live path (what the Python tool left) the first release: it is
 * moved into releases/ and the live path becomes a link to it, so a failed first deploy has
 * something to revert to. Two renames on one filesystem: the live path is absent for the instant
 * between them (a directory cannot be replaced by a link in one rename(2)).
 */
export async function adoptCommand(context: AgentContext, print: Print): Promise<void> {
  await withLockedState(context, async (state, layout) => {
    const info = await lstat(layout.live).catch(() => undefined);
    if (!info) throw usageError(`there is nothing at ${layout.live} to adopt`, 'run the agent: the first deploy creates the live path');
    if (info.isSymbolicLink()) throw usageError(`${layout.live} is already a link made by repo-deploy; nothing to adopt`);
    if (!info.isDirectory()) throw usageError(`${layout.live} is a file, not a directory; only a directory can be adopted`);
    await ensureOwnDirectory(layout.releasesDirectory);
    const releaseDirectory = await realpath(layout.releasesDirectory);
    const liveParent = await realpath(dirname(layout.live));
    if (dirname(releaseDirectory) !== liveParent) throw usageError(`${layout.releasesDirectory} is not beside ${layout.live}`);
    const id = await newReleaseId(layout, 'adopted', context.now(), state.releases.map((release) => release.id));
    await rename(layout.live, releasePath(layout, id));
    await pointLiveAt(layout, id);
    await writeManifest(releasePath(layout, id), manifestPath(layout.releasesDirectory, id));
    const at = context.now().toISOString();
    state.releases.push({ id, revision: '', createdAt: at, deployedAt: at, status: 'adopted', verified: false });
    recordLiveRelease(state, { release: id, revision: '', remoteState: {} }, 'previous');
    context.log.info(`adopted ${layout.live} as release ${id}`, { release: id });
    await tell(context, { event: 'adopt', release: id, exitCode: ExitCode.ok });
    print(`adopted: ${layout.live} is now a link to releases/${id}, which holds the directory that was there; the next check deploys the remote's revision and can revert to it`);
  });
}

/** Stops deploying on this server until resume; an update already under way finishes (or reverts) first. */
export async function pauseCommand(context: AgentContext, reason: string | undefined, print: Print): Promise<void> {
  const { settings } = context;
  const cache = cacheLayoutFor(settings.cache);
  const already = await readPause(cache);
  const pause = { since: already?.since ?? context.now().toISOString(), reason: reason ?? already?.reason, by: operatorName(context.env) };
  await writePause(cache, pause);
  context.log.info(`deploys paused${pause.reason ? `: ${pause.reason}` : ''}`);
  if (!already) await tell(context, { event: 'pause', reason: pause.reason, exitCode: ExitCode.ok });
  print(`${already ? 'still ' : ''}${describePause(pause)}; checks go on, nothing is deployed until "repo-deploy resume"`);
  const state = await loadState(settings.cache);
  const holder = await currentLockHolder(settings.cache);
  if (state.inProgress) {
    print(`an ${state.inProgress.kind} to release ${state.inProgress.release} is under way (step ${state.inProgress.step}): it finishes, or reverts, first; nothing is deployed after it`);
  } else if (holder) {
    print(`a check by process ${holder.pid} is running: an update it has already begun finishes, or reverts, first; nothing is deployed after it`);
  }
}

export async function resumeCommand(context: AgentContext, print: Print): Promise<void> {
  const { settings } = context;
  const pause = await clearPause(cacheLayoutFor(settings.cache));
  if (!pause) return print('not paused: nothing to resume');
  context.log.info('deploys resumed');
  await tell(context, { event: 'resume', pausedSince: pause.since, reason: pause.reason, exitCode: ExitCode.ok });
  const waiting = (await loadState(settings.cache)).waiting;
  const next = waiting ? `revision ${shortRevision(waiting.revision)}, which waited, is deployed at the next check` : 'the next check deploys what is new';
  print(`resumed (was ${describePause(pause)}); ${next} (systemctl reload repo-deploy, or SIGHUP, checks now)`);
}

/** check-config's parts for the operator's controls: deploy window, min-age, webhook, pause, health gate, fleet. */
function operatorControlParts(context: AgentContext): Array<[string, () => Promise<string>]> {
  const { settings } = context;
  return [
    [
      'deploy window',
      async () => {
        if (settings.deployWindow.length === 0) return 'none (updates may start at any check)';
        const window = await windowStateAt(settings.deployWindow, settings.deployWindowTimezone, context.now());
        const now = window.open ? `open now, until ${window.closesAt.toISOString()}` : `closed now${window.opensAt ? `, opens at ${window.opensAt.toISOString()}` : ''}`;
        return `${settings.deployWindow.map((entry) => `"${entry.text}"`).join('; ')} (time zone ${settings.deployWindowTimezone ?? 'of the system'}): ${now}`;
      },
    ],
    ['min-age', async () => (settings.minAgeMs > 0 ? `${settings.minAgeMs / 1000} s after this agent first sees a revision` : 'off')],
    [
      'webhook',
      async () => {
        if (!settings.webhookSecret) return 'off (set webhook-secret to turn on POST /check)';
        if (!settings.httpListen) return 'webhook-secret is set, but http-listen is not: POST /check cannot be reached (set http-listen = 127.0.0.1:PORT)';
        return `POST /check on ${settings.httpListen.host}:${settings.httpListen.port}, at most one accepted every ${settings.webhookMinIntervalMs / 1000} s`;
      },
    ],
    [
      'paused',
      async () => {
        const pause = await readPause(cacheLayoutFor(settings.cache));
        return pause ? describePause(pause) : 'no';
      },
    ],
    ['health', async () => (settings.healthCheck ? `${settings.healthCheck}${settings.healthSettleMs ? `, passing for ${settings.healthSettleMs / 1000} s (every ${settings.healthIntervalMs / 1000} s)` : ''}` : 'no health gate')],
    [
      'fleet',
      async () => {
        if (!settings.fleetRedis) return 'none (this server deploys on its own)';
        const { Fleet } = await import('../fleet/fleet.js');
        const limit = (value: CountOrPercent) => ('count' in value ? String(value.count) : `${value.percent}%`);
        // An unreachable fleet is said as what it is here, not in the words of an update that would not start.
        const inOwnWords = (error: unknown) => {
          const failure = asDeployError(error);
          return new DeployError(failure.kind, failure.hint ? failure.message.slice(0, -(failure.hint.length + 2)) : failure.message, { hint: 'start it, or check fleet-redis (address, password, TLS)', cause: error });
        };
        const { existingFleetInstanceId } = await import('../fleet/instance.js');
        const instance = existingFleetInstanceId(settings.cache) ?? '';
        const fleet = await Fleet.connect(settings, instance).catch((error: unknown) => Promise.reject(inOwnWords(error)));
        try {
          const { halt: halted, current, progress, members } = await fleet.status().catch((error: unknown) => Promise.reject(inOwnWords(error)));
          const holder = members.find((member) => member.host === fleet.host && member.alive && member.instance && member.instance !== instance);
          if (holder?.instance) throw fleet.nameClash(holder.instance);
          const memory = (await loadState(settings.cache)).fleet;
          const known = memory && memory.name === settings.fleetName ? memory.epoch : undefined;
          const epoch = await fleet.readEpoch();
          if (Fleet.epochLost(known, epoch)) throw fleet.recordsLost(known ?? '', epoch !== undefined);
          const policy = await fleet.readPolicy();
          if (policy) fleet.refuseOtherPolicy(policy);
          const revisionHalt = current && progress?.halted ? `; revision ${shortRevision(current.revision)} HALTED for the fleet: ${progress.halted.reason} ("repo-deploy fleet resume ${shortRevision(current.revision)}" lets it roll again)` : '';
          return `${settings.fleetName} on ${fleet.display} (reachable) as ${fleet.host}; max-parallel ${limit(settings.maxParallel)}, canary ${limit(settings.canary)}, max-failed-hosts ${settings.maxFailedHosts}, fleet-lease ${settings.fleetLeaseMs / 1000} s${settings.fleetFailOpen ? ', fail open' : ''}${halted ? `; HALTED since ${halted.at} by ${halted.by} ("repo-deploy fleet resume" lifts it)` : ''}${revisionHalt}`;
        } finally {
          await fleet.close();
        }
      },
    ],
  ];
}
