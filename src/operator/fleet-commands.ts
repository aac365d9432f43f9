// repo-deploy fleet status | halt | resume: the operator's view of a fleet and its big red button.
import type { AgentContext } from '../core/agent-context.js';
import { usageError } from '../base/errors.js';
import { shortRevision } from '../release/failures.js';
import { Fleet } from '../fleet/fleet.js';
import { operatorName } from '../base/operator-name.js';
import { resolveRevision } from './revision-prefix.js';
import { tell } from '../history/record.js';

type Print = (line: string) => void;

async function withFleet<T>(context: AgentContext, work: (fleet: Fleet) => Promise<T>): Promise<T> {
  if (!context.settings.fleetRedis) throw usageError('no fleet is configured', 'set fleet-redis and fleet-name (in the config file the agent uses: -c)');
  const fleet = await Fleet.connect(context.settings);
  try {
    return await work(fleet);
  } finally {
    await fleet.close();
  }
}

export function fleetStatusCommand(context: AgentContext, json: boolean, print: Print): Promise<void> {
  return withFleet(context, async (fleet) => {
    const status = await fleet.status();
    if (json) return print(JSON.stringify(status, null, 2));
    print(`fleet:    ${context.settings.fleetName} on ${fleet.display}`);
    print(`halted:   ${status.halt ? `yes, since ${status.halt.at} by ${status.halt.by}${status.halt.reason ? `: ${status.halt.reason}` : ''} ("repo-deploy fleet resume" ends it)` : 'no'}`);
    if (status.current && status.progress) {
      const { committed, failed, inProgress, halted } = status.progress;
      print(`rolling:  revision ${shortRevision(status.current.revision)} (${status.current.pinned ? `ROLLED BACK to it by ${status.current.pinned.by} at ${status.current.pinned.at}; "repo-deploy fleet resume" ends it` : `found by ${status.current.by}`}): ${committed.length} committed, ${inProgress.length} in progress, ${Object.keys(failed).length} failed`);
      if (status.progress.promoted) print(`          promoted by ${status.progress.promoted.by} at ${status.progress.promoted.at}: the rest follows the canaries`);
      else if (context.settings.canaryPromote === 'manual') print(`          canary-promote = manual: after the canaries, the rest waits for "repo-deploy fleet promote"`);
      if (halted) print(`          HALTED for the fleet: ${halted.reason} ("repo-deploy fleet resume ${shortRevision(status.current.revision)}" lets it roll again)`);
      for (const [host, reason] of Object.entries(failed)) print(`          failed on ${host}: ${reason}`);
    } else {
      print('rolling:  nothing yet');
    }
    for (const member of status.members) {
      print(`${member.alive ? ' ' : '?'} ${member.host.padEnd(24)} ${member.state.padEnd(9)} live ${shortRevision(member.live)}  seen ${member.seen}${member.alive ? '' : ' (no heartbeat within fleet-lease)'}${member.reason ? `  ${member.reason}` : ''}`);
      if (member.clash) print(`  CLASH: another agent (instance ${member.clash.instance.slice(0, 8)}, at ${member.clash.at}) tried to use the name ${member.host}, held by ${member.instance?.slice(0, 8) ?? '?'}: two servers share one host name; give one of them its own host-id`);
    }
  });
}

export function fleetHaltCommand(context: AgentContext, reason: string | undefined, print: Print): Promise<void> {
  return withFleet(context, async (fleet) => {
    await fleet.halt(reason ?? '', operatorName(context.env), context.now());
    await tell(context, { event: 'fleet-halt', fleet: context.settings.fleetName, reason, exitCode: 0 });
    print(`fleet ${context.settings.fleetName} halted: no server of it starts or swaps in an update until "repo-deploy fleet resume" (one already swapped in finishes its gate or reverts)`);
  });
}

export function fleetResumeCommand(context: AgentContext, typed: string | undefined, print: Print): Promise<void> {
  return withFleet(context, async (fleet) => {
    if (typed === undefined) {
      const { wasHalted, wasPinned } = await fleet.resume(undefined);
      await tell(context, { event: 'fleet-resume', fleet: context.settings.fleetName, wasHalted, wasPinned, exitCode: 0 });
      print(wasHalted ? 'the fleet halt is lifted' : 'the fleet was not halted');
      if (wasPinned) print('the fleet rollback ends: the remote\'s newest revision rolls out at the next checks');
      return;
    }
    // Only what is named: a revision's resume leaves a fleet-wide halt in place.
    const revision = resolveRevision(typed, await fleet.knownRevisions());
    if (!revision) throw usageError(`the fleet has no record of revision "${typed}"`, '"repo-deploy fleet status" shows the revision the fleet rolls out and whether it is halted');
    const { wasHalted } = await fleet.resume(revision);
    await tell(context, { event: 'fleet-resume', fleet: context.settings.fleetName, revisionTo: revision, wasHalted, exitCode: 0 });
    print(wasHalted ? `revision ${shortRevision(revision)} may roll out again (its failures are forgotten)` : `revision ${shortRevision(revision)} was not halted; its failures, if any, are forgotten`);
  });
}

/** Accepts the fleet's records as they are after Redis lost its data: members write back the halts they remember. */
export function fleetInitCommand(context: AgentContext, print: Print): Promise<void> {
  return withFleet(context, async (fleet) => {
    const epoch = await fleet.init(operatorName(context.env), context.now());
    print(`fleet ${context.settings.fleetName} initialised (epoch ${epoch.id}): each server accepts it at its next check and writes back the halts it remembers; "repo-deploy fleet status" shows them once written`);
  });
}

/** Makes this config's remote and rollout settings the fleet's; members whose config differs are refused until they agree. */
export function fleetConfigureCommand(context: AgentContext, print: Print): Promise<void> {
  return withFleet(context, async (fleet) => {
    const policy = await fleet.configure(operatorName(context.env), context.now());
    print(`fleet ${context.settings.fleetName} now takes these settings: ${Object.entries(policy).map(([key, value]) => `${key} = ${value}`).join(', ')}; a member whose config differs is refused (exit 2) until it agrees`);
  });
}

/** canary-promote = manual: lets the rest of the fleet follow the canaries with the revision (default: the one rolling out). */
export function fleetPromoteCommand(context: AgentContext, typed: string | undefined, print: Print): Promise<void> {
  return withFleet(context, async (fleet) => {
    const revision = typed === undefined ? (await fleet.current())?.revision : resolveRevision(typed, await fleet.knownRevisions());
    if (!revision) throw usageError(typed === undefined ? 'the fleet rolls out no revision yet' : `the fleet has no record of revision "${typed}"`, '"repo-deploy fleet status" shows the revision the fleet rolls out');
    await fleet.promote(revision, operatorName(context.env), context.now());
    print(`revision ${shortRevision(revision)} is promoted: the rest of fleet ${context.settings.fleetName} follows the canaries, max-parallel at a time`);
  });
}

/**
 * Every member goes back to an earlier revision, from a release of its own, through the fleet's
 * gated path (slots, canary, hooks in phase rollback, health gate); the remote's newer revisions
 * wait until \`fleet resume\`.
 */
export function fleetRollbackCommand(context: AgentContext, typed: string | undefined, print: Print): Promise<void> {
  return withFleet(context, async (fleet) => {
    if (typed === undefined) throw usageError('fleet rollback needs the revision to go back to', '"repo-deploy releases" on a server lists the revisions it holds');
    const revision = resolveRevision(typed, await fleet.knownRevisions());
    if (!revision) throw usageError(`the fleet has no record of revision "${typed}"`, '"repo-deploy fleet status" and "repo-deploy releases" show the revisions');
    const current = await fleet.current();
    if (!current) throw usageError('the fleet has rolled nothing out yet', 'there is nothing to roll back');
    await fleet.resume(revision); // the operator names it: a halt or failures of it are lifted
    await fleet.pin(revision, current.remote, operatorName(context.env), context.now());
    print(`fleet ${context.settings.fleetName} rolls back to revision ${shortRevision(revision)}: each server switches to its own release of it at its next check, max-parallel at a time, with the hooks in phase rollback and the health gate; the remote's newer revisions wait until "repo-deploy fleet resume"`);
  });
}
