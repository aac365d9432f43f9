// One check of a fleet member: what the fleet lets it do. Only the scout (one member at a time)
// asks the remote about revisions the fleet does not know yet, so a new revision is downloaded
// once, by the server that found it; the others learn it from Redis ("current") and download it
// only once they hold a slot. A slot is a lease renewed while the update runs; a member whose
// lease was lost before the swap abandons its update. Successes and failures are reported, and a
// failed canary or max-failed-hosts failures halt the revision for the fleet.
import type { AgentContext, CheckOutcome } from '../core/agent-context.js';
import type { ClosedGate, DeployGate } from '../gates/deploy-gates.js';
import { messageOf } from '../base/errors.js';
import { shortRevision } from '../release/failures.js';
import type { RemoteState } from '../core/remote-contract.js';
import { Fleet, type FleetRevision, type MemberState } from './fleet.js';
import { fleetInstanceId } from './instance.js';
import type { AgentState, FleetMemory } from '../release/state.js';
import type { FleetSlot } from '../release/switch-release.js';

export interface FleetPlan {
  /** Whether this member is the scout and may ask the remote. */
  askRemote: boolean;
  /** The revision the fleet rolls out, when it is not what is live here. */
  known: FleetRevision | undefined;
}

export class FleetRollout {
  private scouting = false;
  /** Renews the scout role while this member asks the remote and downloads (a slow download outlasts fleet-lease). */
  private scoutRenewal: NodeJS.Timeout | undefined;
  /** \`current\`'s publication count when this check read it: a scout publishes only over that. */
  private seenSeq = '';
  /** What this member remembers of the fleet (in its state), kept up to date by this check. */
  private memory: FleetMemory = { name: '', epoch: '', halted: {} };
  /** The fencing token of the slot `permit` was given, and whether as a canary, by revision. */
  private readonly slots = new Map<string, { token: string; canary: boolean }>();

  private constructor(
    private readonly fleet: Fleet,
    private readonly context: AgentContext,
  ) {}

  /** Joins the fleet for one check; undefined when it cannot be reached and fleet-fail-open is set. */
  static async join(context: AgentContext): Promise<FleetRollout | undefined> {
    try {
      return new FleetRollout(await Fleet.connect(context.settings, await fleetInstanceId(context.settings.cache)), context);
    } catch (error) {
      if (!context.settings.fleetFailOpen) throw error;
      context.log.warn(`${messageOf(error)}; fleet-fail-open = yes: this check goes on without the fleet`);
      return undefined;
    }
  }

  async plan(state: AgentState, remoteKey: string): Promise<FleetPlan> {
    const now = this.context.now();
    const live = state.current?.revision ?? '';
    await this.fleet.heartbeat(now, state.waiting ? 'waiting' : 'idle', live, state.waiting?.reason);
    await this.checkEpoch(state);
    await this.reportCrashes(state);
    const current = await this.fleet.current();
    this.seenSeq = current?.seq ?? '';
    const known = current && current.remote === remoteKey && current.revision !== live ? current : undefined;
    this.scouting = await this.fleet.scout();
    if (this.scouting) {
      const renewEvery = Math.max(1000, Math.floor(this.context.settings.fleetLeaseMs / 3));
      this.scoutRenewal = setInterval(() => void this.fleet.renewScout().catch(() => undefined), renewEvery);
    }
    if (!this.scouting) this.context.log.debug(`another member of the fleet is asking the remote; ${known ? `the fleet rolls out ${shortRevision(known.revision)}` : 'nothing new for this server'}`);
    return { askRemote: this.scouting, known };
  }

  /**
   * Fails closed when the fleet's Redis lost its data (the epoch this member knew is gone or was
   * made again by a member that never knew it): its halts went with it, and a halted revision
   * would roll on. After \`fleet init\` (a new epoch an operator accepted), the halts this member
   * remembers are written back.
   */
  private async checkEpoch(state: AgentState): Promise<void> {
    const name = this.context.settings.fleetName ?? '';
    const memory = state.fleet?.name === name ? state.fleet : undefined;
    const now = this.context.now();
    const found = await this.fleet.epoch(memory?.epoch, now);
    if (found.verdict === 'lost') throw this.fleet.recordsLost(memory?.epoch ?? '', found.epoch !== undefined);
    if (found.verdict === 'reinitialised' && memory) {
      const count = Object.keys(memory.halted).length + (memory.halt ? 1 : 0);
      await this.fleet.reassertHalts(memory.halt, memory.halted, now);
      this.context.log.warn(`fleet ${name} was initialised again${found.epoch.operator ? ` by ${found.epoch.operator}` : ''} at ${found.epoch.at} ("repo-deploy fleet init"); ${count ? `the ${count} halt${count > 1 ? 's' : ''} this server remembers ${count > 1 ? 'were' : 'was'} written back` : 'this server remembers no halt'}`);
    }
    this.memory = { name, epoch: found.epoch.id, halt: memory?.halt, halted: { ...memory?.halted } };
    state.fleet = this.memory;
  }

  /**
   * Tells the fleet of updates that failed by a crash after their swap (journaled with the switch,
   * found by recovery), as a failed hook would have: a revision that kills its host is halted.
   * A report that cannot be sent is kept for the next check; one for another fleet (the config
   * changed) cannot be delivered and is dropped.
   */
  private async reportCrashes(state: AgentState): Promise<void> {
    const name = this.context.settings.fleetName;
    for (const report of (state.fleetReports ?? []).filter((entry) => entry.fleet === name)) {
      const halt = await this.fleet.fail(report.revision, report.reason, new Date(report.at), report.canary);
      state.fleetReports = state.fleetReports?.filter((entry) => entry !== report);
      if (halt) this.memory.halted[report.revision] = halt;
      this.context.log.error(`told the fleet that revision ${shortRevision(report.revision)} failed on this server: ${report.reason}`, { revision: report.revision });
      if (halt) this.context.log.error(`revision ${shortRevision(report.revision)} is now halted for the whole fleet: ${halt}`, { revision: report.revision });
    }
    state.fleetReports = undefined;
  }

  /**
   * A revision this member found (it is the scout): the fleet rolls it out from now on, unless
   * another scout published a revision since this check read \`current\` (this one was slowed past
   * its lease: that one stands) or the fleet is rolled back (\`fleet rollback\`); \`published\` says
   * which, and an unpublished revision is not deployed by this check.
   */
  async discovered(revision: string, remote: string, remoteState: RemoteState): Promise<{ published: boolean }> {
    const published = await this.fleet.publishCurrent({ revision, remote, remoteState, by: this.fleet.host }, this.context.now(), this.seenSeq);
    if (published.published) this.context.log.info(`revision ${shortRevision(revision)} is new to the fleet: rolling it out`, { revision });
    else if (published.pinned) {
      this.context.log.info(`the remote has revision ${shortRevision(revision)}, but fleet ${this.context.settings.fleetName} is rolled back to ${shortRevision(published.revision)} by ${published.by} ("repo-deploy fleet rollback"): it is not rolled out until "repo-deploy fleet resume"`, { revision });
    } else {
      this.context.log.info(
        `revision ${shortRevision(revision)} was found here, but meanwhile ${published.by || 'another member'} published ${shortRevision(published.revision)} for the fleet (this server's scout lease lapsed during its check): ${shortRevision(revision)} is not rolled out, and the fleet's revision is deployed at a later check`,
        { revision },
      );
    }
    return published;
  }

  /** The fleet as the last of a check's gates: it opens by giving this server a slot. */
  gate(): DeployGate {
    return { kind: 'fleet', takesASlot: true, closedFor: (revision) => this.permit(revision) };
  }

  /** Undefined when this member may start the update now; else why it waits. */
  async permit(revision: string): Promise<ClosedGate | undefined> {
    let permission;
    try {
      permission = await this.fleet.begin(revision);
    } catch (error) {
      if (!this.context.settings.fleetFailOpen) throw error;
      this.context.log.warn(`${messageOf(error)}; fleet-fail-open = yes: deploying without the fleet`);
      return undefined;
    }
    // Remembered for a Redis that loses its data: what begin said of the fleet and the revision.
    if (permission.go || !permission.halted) {
      this.memory.halt = undefined;
      delete this.memory.halted[revision];
    } else if (permission.fleetHalt) this.memory.halt = permission.fleetHalt;
    else if (permission.revisionHalt) this.memory.halted[revision] = permission.revisionHalt;
    if (permission.go) {
      this.slots.set(revision, { token: permission.token, canary: permission.canary });
      this.context.log.info(`the fleet lets this server deploy ${shortRevision(revision)}${permission.canary ? ' as a canary' : ''}`, { revision });
      return undefined;
    }
    return { gate: 'fleet', reason: permission.reason };
  }

  /**
   * Runs the update with the slot's lease renewed, then reports how it ended. `mayProceed`, asked
   * just before the swap, says why to abandon the update: a lease that lapsed (another server may
   * hold the slot), or a halt of the fleet or of the revision since the update began; all three
   * are asked of Redis in one step, with the slot renewed by it.
   */
  async deploy(revision: string, update: (slot: FleetSlot) => Promise<CheckOutcome>): Promise<CheckOutcome> {
    const { log } = this.context;
    const { token, canary } = this.slots.get(revision) ?? { token: '', canary: false };
    let lost: string | undefined;
    const renewEvery = Math.max(1000, Math.floor(this.context.settings.fleetLeaseMs / 3));
    const renewing = setInterval(() => {
      this.fleet.renew(revision, token).then(
        (held) => {
          if (!held && !lost) lost = 'the fleet slot\'s lease was lost (fleet-lease passed without a renewal)';
        },
        (error: unknown) => {
          lost ??= `the fleet slot's lease could not be renewed: ${messageOf(error)}`;
        },
      );
    }, renewEvery);
    await this.fleet.heartbeat(this.context.now(), 'deploying', revision).catch(() => undefined);
    const mayProceed = async () => {
      try {
        return (await this.fleet.preSwap(revision, token)) ?? lost;
      } catch (error) {
        return `the fleet could not confirm the slot before the swap: ${messageOf(error)}`;
      }
    };
    // Only a slot Redis says is gone takes the release back; a Redis that cannot be asked keeps it
    // (the commit that follows then says whether the fleet counts it).
    const mayCommit = async () => {
      try {
        if (await this.fleet.renew(revision, token)) return undefined;
      } catch (error) {
        log.warn(`could not ask the fleet whether this server still holds its slot before committing: ${messageOf(error)}; the release stays`, { revision });
        return undefined;
      }
      return 'this server\'s fleet slot lapsed before its gate ended (paused longer than fleet-lease?) and another server may have held it meanwhile';
    };
    let outcome: CheckOutcome;
    try {
      outcome = await update({ fleet: this.context.settings.fleetName ?? '', canary, mayProceed, mayCommit });
    } finally {
      clearInterval(renewing);
    }
    try {
      if (outcome.result === 'updated') {
        if (!(await this.fleet.commit(revision, token))) {
          log.error(
            `revision ${shortRevision(revision)} went live here, but this server's fleet slot lapsed before its gate ended (paused longer than fleet-lease?) and another server may have held it meanwhile: the fleet does not count this server as committed`,
            { revision },
          );
        }
      } else if (outcome.result === 'blocked' || outcome.result === 'reverted') {
        const halt = await this.fleet.fail(revision, outcome.error.message, this.context.now());
        if (halt) this.memory.halted[revision] = halt;
        if (halt) log.error(`revision ${shortRevision(revision)} is now halted for the whole fleet: ${halt}`, { revision });
      } else await this.fleet.release(revision);
    } catch (error) {
      log.error(`${messageOf(error)}: this server's result for ${shortRevision(revision)} could not be reported; its slot frees itself within fleet-lease`);
    } finally {
      this.slots.delete(revision);
    }
    return outcome;
  }

  /** Frees a slot this member will not use after all. */
  async giveBack(revision: string): Promise<void> {
    await this.fleet.release(revision);
  }

  /** Says how the check ended, gives up the scout role and disconnects. */
  /** See Fleet.firstToTell; a Redis that cannot be reached tells (a notification too many beats one lost). */
  firstToTell(event: string, revision: string): Promise<boolean> {
    return this.fleet.firstToTell(event, revision).catch(() => true);
  }

  async finish(outcome: CheckOutcome, state: AgentState): Promise<void> {
    const states: Partial<Record<CheckOutcome['result'], MemberState>> = { waiting: 'waiting', blocked: 'failed', reverted: 'failed', failed: 'failed', refused: 'failed', 'held-back': 'failed' };
    const reason = outcome.result === 'waiting' ? outcome.reason : 'error' in outcome ? outcome.error.message : '';
    clearInterval(this.scoutRenewal);
    try {
      await this.fleet.heartbeat(this.context.now(), states[outcome.result] ?? 'idle', state.current?.revision ?? '', reason);
      if (this.scouting) await this.fleet.releaseScout();
    } catch (error) {
      this.context.log.debug(`could not report to the fleet at the end of the check: ${messageOf(error)}`);
    } finally {
      await this.fleet.close();
    }
  }
}
