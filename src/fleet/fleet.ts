// The agent's side of a fleet rollout, coordinated through Redis (the scripts are in
// fleet-scripts.ts, the client for each shape of Redis in redis-client.ts). Every call fails fast:
// with the fleet unreachable, no update starts, unless fleet-fail-open is set.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Cluster, Redis } from 'ioredis';
import { DeployError, messageOf } from '../base/errors.js';
import { createRedisClient, describeConnectionError, wrongKindOfServer } from './redis-client.js';
import { shortRevision } from '../release/failures.js';
import { oneLine } from '../base/log.js';
import { redact } from '../base/redact.js';
import { beginScript, commitScript, epochScript, failScript, heartbeatScript, pinScript, preSwapScript, publishScript, releaseScoutScript, releaseScript, renewScoutScript, renewScript } from './lua-scripts.js';
import type { RemoteState } from '../core/remote-contract.js';
import type { Settings } from '../core/settings.js';
import type { CountOrPercent } from '../core/settings-schema.js';
import { fleetPolicyOf, policyDifferences, type FleetPolicy } from './policy.js';

export type MemberState = 'idle' | 'waiting' | 'deploying' | 'gate' | 'failed';

/** The revision the fleet rolls out, as the server that found it saw it. */
export interface FleetRevision {
  revision: string;
  remote: string;
  remoteState: RemoteState;
  by: string;
  /** How many times \`current\` was published when this was read ('' before the first). */
  seq?: string;
  /** Set by \`fleet rollback\`: an earlier revision the members switch back to from their own releases. */
  pinned?: { by: string; at: string };
}

export interface FleetEpoch {
  id: string;
  /** \`first-use\`: made by the first member of a fleet; \`init\`: by \`fleet init\`. */
  by: 'first-use' | 'init';
  at: string;
  operator?: string;
}

export interface HaltRecord {
  reason: string;
  by: string;
  at: string;
}

/** \`token\`: the slot's fencing token, presented to renew, swap and commit. */
export type Permission =
  | { go: true; canary: boolean; token: string }
  | { go: false; reason: string; halted: boolean; fleetHalt?: HaltRecord; revisionHalt?: string };

export interface FleetMember {
  host: string;
  alive: boolean;
  /** The agent that holds the name (a random id from its cache), null before any heartbeat with one. */
  instance: string | null;
  /** Another agent that tried to use the same name recently (within 15 minutes, or three leases if longer). */
  clash: { instance: string; at: string } | null;
  state: string;
  live: string;
  reason: string;
  seen: string;
}

/** As `fleet status --json` prints it: every field always there, null when unset. */
export interface FleetStatus {
  halt: { reason: string; by: string; at: string } | null;
  current: FleetRevision | null;
  members: FleetMember[];
  progress: {
    committed: string[];
    failed: Record<string, string>;
    inProgress: string[];
    halted: { reason: string; host: string; at: string } | null;
    /** \`fleet promote\` of this revision (canary-promote = manual). */
    promoted: { by: string; at: string } | null;
  } | null;
}

export class Fleet {
  readonly host: string;
  private readonly prefix: string;

  private constructor(
    private readonly redis: Redis | Cluster,
    private readonly settings: Settings,
    readonly display: string,
    /** This agent's fleet identity (fleet-instance.ts); commands that only read or halt have none. */
    private readonly instance: string,
  ) {
    this.host = settings.hostId ?? hostname();
    this.prefix = `repo-deploy:{${settings.fleetName}}:`;
  }

  /** Connects (fails fast with a fetch error naming the address, never the password). */
  static async connect(settings: Settings, instance = ''): Promise<Fleet> {
    const url = settings.fleetRedis as string;
    const display = redact(url); // the password was registered as a secret with the settings, too
    const redis = createRedisClient(url, settings);
    const fleet = new Fleet(redis, settings, display, instance);
    // The connection's own error says why (WRONGPASS, a TLS failure); the command that then
    // fails says only "Connection is closed.", so the reason is kept for the report.
    redis.on('error', (error: Error) => {
      fleet.connectionError ??= error;
    });
    // Bounded here too: a connect() that never settles (seen with ioredis's Cluster client) would
    // leave the process with nothing to wait on, and Node would end it silently (exit 13).
    let bound: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        redis.connect(),
        new Promise((_resolve, reject) => {
          bound = setTimeout(() => reject(new Error('no connection within 10 s')), 10_000);
        }),
      ]);
    } catch (error) {
      redis.disconnect();
      throw fleet.unreachable(error);
    } finally {
      clearTimeout(bound);
    }
    return fleet;
  }

  private connectionError: Error | undefined;

  unreachable(error: unknown): DeployError {
    const kindOfServer = wrongKindOfServer(messageOf(error));
    if (kindOfServer) {
      // Not a fault a retry cures: the URL names a server the fleet cannot use.
      return new DeployError('usage', `the fleet's Redis at ${this.display} ${kindOfServer} (it answered "${redact(oneLine(messageOf(error))).slice(0, 120)}")`, {
        hint: kindOfServer.includes('Cluster') ? 'name it as a Cluster: redis-cluster://host:port[,host:port] (with "user:password@" after the "//"); no update starts until then' : 'point fleet-redis at the primary, or at its Sentinels with redis-sentinel://; no update starts until then',
      });
    }
    const reason = this.connectionError ? describeConnectionError(this.connectionError) : messageOf(error);
    return new DeployError('fleet', `the fleet's Redis at ${this.display} cannot be reached (${redact(oneLine(reason))})`, {
      hint: 'no update starts; the live release is unchanged; the next check tries again (fleet-fail-open = yes deploys without the fleet)',
    });
  }

  /**
   * A JSON record read from the fleet's Redis. Only agents write there; something else (junk, an
   * array, a number) is said as what it is, naming the key, never as an unreachable Redis.
   */
  private record<T>(text: string, name: string): T {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DeployError('fleet', `the fleet's Redis at ${this.display} holds something repo-deploy did not write under ${this.key(name)} (${JSON.stringify(redact(oneLine(text)).slice(0, 60))}); no update starts`, {
        hint: 'whoever can write to the fleet\'s Redis can steer the fleet: find who wrote it; "repo-deploy fleet init" writes the epoch anew, "fleet configure" the policy, "fleet resume" clears a halt',
      });
    }
    return value as T;
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  private revisionKeys(revision: string) {
    const base = `rev:${revision}:`;
    return {
      canaries: this.key(`${base}canaries`),
      committed: this.key(`${base}committed`),
      failed: this.key(`${base}failed`),
      halted: this.key(`${base}halted`),
      promoted: this.key(`${base}promoted`),
      committedAt: this.key(`${base}committed-at`),
    };
  }

  private async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof DeployError) throw error; // a refusal decided on Redis's answer, not a connection failure
      throw this.unreachable(error);
    }
  }

  /**
   * Registers this member as alive, with what it is doing, for three leases: heartbeats come with
   * checks, and a member on a one-minute schedule must not drop out between two of them. Throws a
   * usage error when another live agent holds this server's name.
   */
  async heartbeat(now: Date, state: MemberState, live: string, reason = ''): Promise<void> {
    const lease = 3 * this.settings.fleetLeaseMs;
    const [verdict, owner = ''] = await this.call(async () => (await this.redis.eval(heartbeatScript, 2, this.key('members'), this.key(`member:${this.host}`), this.host, lease, state, live, reason, now.toISOString(), this.instance)) as string[]);
    if (verdict === 'clash') throw this.nameClash(owner);
  }

  /** The usage error of a second agent under a live member's name. */
  nameClash(owner: string): DeployError {
    return new DeployError('usage', `another agent (instance ${owner.slice(0, 8)}) is a live member of fleet ${this.settings.fleetName} under this server's name "${this.host}", and this one is ${this.instance ? this.instance.slice(0, 8) : 'new (no fleet-instance in its cache yet)'}: two servers share one host name (a cloned VM?)`, {
      hint: 'set host-id to a name of its own on one of them; until then this server takes no part in the fleet\'s rollouts (the name frees itself within 3 x fleet-lease once the other agent stops)',
    });
  }

  /**
   * The fleet's epoch against the one this member knew: the same (or new to this member), a new
   * one an operator accepted with \`fleet init\` (\`reinitialised\`), or \`lost\`: the key is gone, or
   * was made again on first use by a member that never knew the old one. Lost means Redis lost its
   * data, halts included.
   */
  epoch(known: string | undefined, now: Date): Promise<{ verdict: 'same' | 'reinitialised'; epoch: FleetEpoch } | { verdict: 'lost'; epoch?: FleetEpoch }> {
    return this.call(async () => {
      const policy = JSON.stringify({ ...fleetPolicyOf(this.settings), by: this.host, at: now.toISOString() });
      const [verdict, record = '{}', fleetPolicy = '{}'] = (await this.redis.eval(epochScript, 2, this.key('epoch'), this.key('policy'), known ?? '', randomBytes(8).toString('hex'), now.toISOString(), policy)) as string[];
      if (verdict === 'lost') return { verdict: 'lost' };
      this.refuseOtherPolicy(this.record<Partial<FleetPolicy> & { by?: string; at?: string }>(fleetPolicy, 'policy'));
      const epoch = this.record<FleetEpoch>(record, 'epoch');
      if (Fleet.epochLost(known, epoch)) return { verdict: 'lost', epoch };
      return !known || epoch.id === known ? { verdict: 'same', epoch } : { verdict: 'reinitialised', epoch };
    });
  }

  /** A usage error naming each setting where this member's config differs from the fleet's policy. */
  refuseOtherPolicy(policy: Partial<FleetPolicy> & { by?: string; at?: string }): void {
    const differences = policyDifferences(fleetPolicyOf(this.settings), policy);
    if (differences.length === 0) return;
    throw new DeployError('usage', `this server's config differs from fleet ${this.settings.fleetName}'s settings (set by ${policy.by ?? '?'} at ${policy.at ?? '?'}): ${differences.join(', ')}`, {
      hint: 'make the configs agree, or run "repo-deploy fleet configure" on the server whose settings the fleet should take; until then this server takes no part in the fleet',
    });
  }

  /** The fleet's policy as Redis has it, read only (check-config). */
  async readPolicy(): Promise<(Partial<FleetPolicy> & { by?: string; at?: string }) | undefined> {
    return this.call(async () => {
      const text = await this.redis.get(this.key('policy'));
      return text ? this.record<Partial<FleetPolicy> & { by?: string; at?: string }>(text, 'policy') : undefined;
    });
  }

  /** \`fleet configure\`: this config's settings become the fleet's. */
  configure(by: string, now: Date): Promise<FleetPolicy> {
    const policy = fleetPolicyOf(this.settings);
    return this.call(async () => {
      await this.redis.set(this.key('policy'), JSON.stringify({ ...policy, by, at: now.toISOString() }));
      return policy;
    });
  }

  /** The epoch as Redis has it, read only (check-config). */
  readEpoch(): Promise<FleetEpoch | undefined> {
    return this.call(async () => {
      const record = await this.redis.get(this.key('epoch'));
      return record ? this.record<FleetEpoch>(record, 'epoch') : undefined;
    });
  }

  /** Whether an epoch found in Redis means the records this member knew (\`known\`) were lost. */
  static epochLost(known: string | undefined, found: FleetEpoch | undefined): boolean {
    return Boolean(known) && (!found || (found.id !== known && found.by !== 'init'));
  }

  /** The records this member knew under epoch \`known\` are gone: the error every check fails with until \`fleet init\`. */
  recordsLost(known: string, replaced: boolean): DeployError {
    return new DeployError(
      'fetch',
      `the fleet's Redis at ${this.display} has lost fleet ${this.settings.fleetName}'s records (the epoch ${known} this server knew is ${replaced ? 'replaced by one made on first use' : 'gone'}: a restart without persistence, FLUSHALL, or a failover that lost writes), and any halt with them: no update starts`,
      { hint: 'look at "repo-deploy fleet status", then run "repo-deploy fleet init" once to accept the fleet as it is; every server writes back the halts it remembers (docs/fleet.md says which Redis persistence a fleet needs)' },
    );
  }

  /** \`fleet init\`: a new epoch, which members that knew the old one accept (re-asserting the halts they remember). */
  init(by: string, now: Date): Promise<FleetEpoch> {
    const epoch: FleetEpoch = { id: randomBytes(8).toString('hex'), by: 'init', at: now.toISOString(), operator: by };
    return this.call(async () => {
      await this.redis.set(this.key('epoch'), JSON.stringify(epoch));
      return epoch;
    });
  }

  /** Writes back halts a member remembers, after Redis lost them; an existing halt is left as it is. */
  reassertHalts(fleetHalt: HaltRecord | undefined, revisions: Record<string, string>, now: Date): Promise<void> {
    return this.call(async () => {
      const batch = this.redis.multi();
      if (fleetHalt) batch.set(this.key('halt'), JSON.stringify(fleetHalt), 'NX');
      for (const [revision, reason] of Object.entries(revisions)) {
        batch.set(this.revisionKeys(revision).halted, JSON.stringify({ reason, host: this.host, at: now.toISOString() }), 'PX', 2592000000, 'NX');
      }
      await batch.exec();
    });
  }

  current(): Promise<FleetRevision | undefined> {
    return this.call(async () => {
      const fields = await this.redis.hgetall(this.key('current'));
      if (!fields.revision) return undefined;
      return { revision: fields.revision, remote: fields.remote ?? '', remoteState: this.record<RemoteState>(fields.remoteState ?? '{}', 'current'), by: fields.by ?? '', seq: fields.seq ?? '', pinned: fields.pinned ? this.record<{ by: string; at: string }>(fields.pinned, 'current') : undefined };
    });
  }

  /**
   * Publishes the revision the fleet rolls out, over \`seenSeq\` (what the scout read) only;
   * otherwise says what was published meanwhile.
   */
  publishCurrent(revision: FleetRevision, now: Date, seenSeq: string): Promise<{ published: true } | { published: false; revision: string; by: string; pinned: boolean }> {
    return this.call(async () => {
      const [verdict, current = '', by = ''] = (await this.redis.eval(publishScript, 1, this.key('current'), seenSeq, revision.revision, revision.remote, JSON.stringify(revision.remoteState), this.host, now.toISOString())) as string[];
      if (verdict === 'ok') return { published: true };
      if (verdict === 'pinned') return { published: false, revision: current, by: this.record<{ by: string }>(by, 'current').by, pinned: true };
      return { published: false, revision: current, by, pinned: false };
    });
  }

  /** \`fleet rollback\`: every member goes back to \`revision\` through the gated path; scouts publish nothing over it until \`fleet resume\`. */
  pin(revision: string, remote: string, by: string, now: Date): Promise<void> {
    return this.call(async () => {
      await this.redis.eval(pinScript, 1, this.key('current'), revision, remote, by, now.toISOString(), JSON.stringify({ by, at: now.toISOString() }));
    });
  }

  /**
   * Whether this member is the first of the fleet to tell `event` of `revision` (a notification
   * of the rollout's progress is sent once per fleet, not once per server). Kept 30 days.
   */
  firstToTell(event: string, revision: string): Promise<boolean> {
    return this.call(async () => (await this.redis.set(this.key(`told:${event}:${revision}`), this.host, 'EX', 30 * 86_400, 'NX')) === 'OK');
  }

  /** Takes the scout role: the only member that may ask the remote about a revision the fleet does not know yet. */
  scout(): Promise<boolean> {
    return this.call(async () => (await this.redis.set(this.key('scout'), this.host, 'PX', this.settings.fleetLeaseMs, 'NX')) === 'OK');
  }

  /** Keeps the scout role while this member downloads; false when another member holds it now. */
  renewScout(): Promise<boolean> {
    return this.call(async () => (await this.redis.eval(renewScoutScript, 1, this.key('scout'), this.host, this.settings.fleetLeaseMs)) === 1);
  }

  releaseScout(): Promise<void> {
    return this.call(async () => {
      await this.redis.eval(releaseScoutScript, 1, this.key('scout'), this.host);
    });
  }

  begin(revision: string): Promise<Permission> {
    const { maxParallel, canary, minHealthy } = this.settings;
    const keys = this.revisionKeys(revision);
    return this.call(async () => {
      const answer = (await this.redis.eval(
        beginScript,
        12,
        this.key('halt'), keys.halted, keys.failed, keys.committed, keys.canaries, this.key('slots'), this.key('members'), this.key('fence'), this.key('slot-tokens'), this.key(`member:${this.host}`), keys.promoted, keys.committedAt,
        this.host, this.settings.fleetLeaseMs,
        countOf(maxParallel), percentOf(maxParallel), countOf(canary), percentOf(canary), this.instance, this.settings.bakeTimeMs, this.settings.canaryPromote === 'manual' ? '1' : '0',
        countOf(minHealthy), percentOf(minHealthy),
      )) as string[];
      const [verdict, first = '', second = '', third = ''] = answer;
      if (verdict === 'clash') throw this.nameClash(first);
      if (verdict === 'go') return { go: true, canary: first === 'canary', token: second };
      if (verdict === 'halted-fleet') {
        const halt = this.record<HaltRecord>(first, 'halt');
        return { go: false, halted: true, fleetHalt: halt, reason: `waits: the fleet is halted since ${halt.at} by ${halt.by}${halt.reason ? `: ${halt.reason}` : ''}; "repo-deploy fleet resume" lets it roll on` };
      }
      if (verdict === 'halted-revision') {
        const halt = this.record<{ reason: string; host: string }>(first, `rev:${revision}:halted`);
        return { go: false, halted: true, revisionHalt: halt.reason, reason: `is halted for the fleet: ${halt.reason}; it is not deployed until the remote changes or "repo-deploy fleet resume ${revision}"` };
      }
      if (verdict === 'failed-here') return { go: false, halted: true, reason: `failed on this server (${first}); in a fleet a server does not try a revision again, the others go on ("repo-deploy fleet resume ${revision}" lets it try again)` };
      if (verdict === 'wait-canary') return { go: false, halted: false, reason: `waits for the canary: ${first} of ${second} healthy` };
      if (verdict === 'wait-healthy') return { go: false, halted: false, reason: `waits for min-healthy: ${first} of ${third} live servers are not updating, and one more starting would leave fewer than ${second}` };
      if (verdict === 'wait-promote') return { go: false, halted: false, reason: `waits for "repo-deploy fleet promote": the canary passed its gate (${first} of ${second}), and canary-promote = manual` };
      if (verdict === 'wait-bake') return { go: false, halted: false, reason: `waits for bake-time: a server committed it ${Math.floor(Number(first) / 1000)} s ago, the next may start in ${Math.ceil(Number(second) / 1000)} s` };
      return { go: false, halted: false, reason: `waits for a slot of the rolling update: ${first} of ${second} servers are updating` };
    });
  }

  /** Extends this member's slot; false when the lease was lost (it then no longer counts on it). */
  renew(revision: string, token: string): Promise<boolean> {
    return this.call(async () => (await this.redis.eval(renewScript, 4, this.key('slots'), this.key('slot-tokens'), this.revisionKeys(revision).canaries, this.key('members'), this.host, this.settings.fleetLeaseMs, token, 3 * this.settings.fleetLeaseMs)) === 1);
  }

  /** Just before the swap: undefined when it may go ahead (the slot renewed), else why not. */
  preSwap(revision: string, token: string): Promise<string | undefined> {
    const keys = this.revisionKeys(revision);
    return this.call(async () => {
      const [verdict, record = '{}'] = (await this.redis.eval(preSwapScript, 5, this.key('slots'), this.key('slot-tokens'), keys.canaries, this.key('halt'), keys.halted, this.host, this.settings.fleetLeaseMs, token)) as string[];
      if (verdict === 'go') return undefined;
      if (verdict === 'lost') return 'the fleet slot\'s lease lapsed (fleet-lease passed without a renewal), so another server may hold it';
      const halt = this.record<{ reason?: string; by?: string; at?: string }>(record, verdict === 'halted-fleet' ? 'halt' : `rev:${revision}:halted`);
      if (verdict === 'halted-fleet') return `the fleet was halted${halt.by ? ` by ${halt.by}` : ''}${halt.reason ? `: ${halt.reason}` : ''}`;
      return `revision ${shortRevision(revision)} was halted for the fleet: ${halt.reason ?? ''}`;
    });
  }

  /** The gate passed: counted as committed; false (nothing counted) when the slot had lapsed meanwhile. */
  commit(revision: string, token: string): Promise<boolean> {
    const keys = this.revisionKeys(revision);
    return this.call(async () => (await this.redis.eval(commitScript, 5, this.key('slots'), this.key('slot-tokens'), keys.committed, keys.canaries, keys.committedAt, this.host, token)) === 1);
  }

  /** Reports a failed update; returns the fleet-wide halt it caused, if any. */
  fail(revision: string, reason: string, now: Date, canary = false): Promise<string | undefined> {
    const keys = this.revisionKeys(revision);
    return this.call(async () => {
      const halted = (await this.redis.eval(failScript, 4, this.key('slots'), keys.failed, keys.canaries, keys.halted, this.host, reason, now.toISOString(), this.settings.maxFailedHosts, canary ? '1' : '0')) as string | null;
      return halted ? this.record<{ reason: string }>(halted, `rev:${revision}:halted`).reason : undefined;
    });
  }

  release(revision: string): Promise<void> {
    return this.call(async () => {
      await this.redis.eval(releaseScript, 2, this.key('slots'), this.revisionKeys(revision).canaries, this.host);
    });
  }

  /** \`fleet promote\`: the rest of the fleet may follow the canaries with this revision. */
  promote(revision: string, by: string, now: Date): Promise<void> {
    return this.call(async () => {
      await this.redis.set(this.revisionKeys(revision).promoted, JSON.stringify({ by, at: now.toISOString() }), 'PX', 2592000000);
    });
  }

  halt(reason: string, by: string, now: Date): Promise<void> {
    return this.call(async () => {
      await this.redis.set(this.key('halt'), JSON.stringify({ reason, by, at: now.toISOString() }));
    });
  }

  /** Lifts `fleet halt`; with a revision, only that revision's halt and its failures (the fleet's halt stays). */
  resume(revision: string | undefined): Promise<{ wasHalted: boolean; wasPinned?: boolean }> {
    return this.call(async () => {
      if (!revision) {
        const [halted, pinned] = (await this.redis.multi().del(this.key('halt')).hdel(this.key('current'), 'pinned').exec()) ?? [];
        return { wasHalted: Number(halted?.[1]) > 0, wasPinned: Number(pinned?.[1]) > 0 };
      }
      const keys = this.revisionKeys(revision);
      const [halted] = (await this.redis.multi().del(keys.halted).del(keys.failed).exec()) ?? [];
      return { wasHalted: Number(halted?.[1]) > 0 };
    });
  }

  /** Every revision the fleet holds a record of (rolling out, halted, failed), for a prefix to name. */
  knownRevisions(): Promise<string[]> {
    return this.call(async () => {
      const revisions = new Set<string>();
      const current = await this.current();
      if (current) revisions.add(current.revision);
      const revisionPrefix = this.key('rev:');
      // In a Cluster the fleet's keys live on the primary that owns their slot; scanning every primary finds them.
      const servers = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
      for (const server of servers) {
        for await (const keys of server.scanStream({ match: `${revisionPrefix}*`, count: 500 }) as AsyncIterable<string[]>) {
          for (const key of keys) revisions.add(key.slice(revisionPrefix.length, key.lastIndexOf(':')));
        }
      }
      return [...revisions];
    });
  }

  status(): Promise<FleetStatus> {
    return this.call(async () => {
      // Redis's clock as the scripts read it: in a Cluster, the clock of the node that owns the fleet's slot.
      const [seconds, micros] = (await this.redis.eval("return redis.call('TIME')", 1, this.key('members'))) as [string, string];
      const now = new Date(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)); // Redis's clock, as the scripts reckon
      const haltText = await this.redis.get(this.key('halt'));
      const current = await this.current();
      const hosts = await this.redis.zrange(this.key('members'), 0, -1, 'WITHSCORES');
      const members: FleetMember[] = [];
      for (let index = 0; index < hosts.length; index += 2) {
        const host = hosts[index] as string;
        const fields = await this.redis.hgetall(this.key(`member:${host}`));
        const clash = fields.clash ? this.record<{ instance: string; at: number }>(fields.clash, `member:${host}`) : undefined;
        // Shown while the other agent keeps trying (each of its checks renews it), and a while after.
        const recentClash = clash && clash.at > now.getTime() - Math.max(3 * this.settings.fleetLeaseMs, 15 * 60_000) ? { instance: clash.instance, at: new Date(clash.at).toISOString() } : null;
        members.push({ host, alive: Number(hosts[index + 1]) > now.getTime(), instance: fields.instance ?? null, clash: recentClash, state: fields.state ?? 'unknown', live: fields.live ?? '', reason: fields.reason ?? '', seen: fields.seen ?? '' });
      }
      let progress: FleetStatus['progress'] = null;
      if (current) {
        const keys = this.revisionKeys(current.revision);
        const haltedText = await this.redis.get(keys.halted);
        const promotedText = await this.redis.get(keys.promoted);
        progress = {
          promoted: promotedText ? this.record(promotedText, `rev:${current.revision}:promoted`) : null,
          committed: (await this.redis.smembers(keys.committed)).sort(),
          failed: await this.redis.hgetall(keys.failed),
          inProgress: (await this.redis.zrangebyscore(this.key('slots'), `(${now.getTime()}`, '+inf')).sort(),
          halted: haltedText ? this.record(haltedText, `rev:${current.revision}:halted`) : null,
        };
      }
      return { halt: haltText ? this.record(haltText, 'halt') : null, current: current ?? null, members, progress };
    });
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

const countOf = (value: CountOrPercent) => ('count' in value ? value.count : 0);
const percentOf = (value: CountOrPercent) => ('percent' in value ? value.percent : 0);
