// The settings every member of a fleet must share: what it deploys and the rollout's rules. A
// member with other values would publish another remote's revisions as the fleet's, or let three
// servers update where the others allow one. The first member writes them to Redis; a member whose
// config differs is refused, naming each difference, until the configs agree or an operator makes
// one server's settings the fleet's (`repo-deploy fleet configure`).
import type { Settings } from '../core/settings.js';
import { requireRemote } from '../settings/config.js';
import type { CountOrPercent } from '../core/settings-schema.js';

/** The fleet's shared settings, as written to Redis (every value a string, in the config file's words). */
export type FleetPolicy = Record<'remote' | 'max-parallel' | 'min-healthy' | 'canary' | 'canary-promote' | 'bake-time' | 'max-failed-hosts' | 'fleet-lease', string>;

const asWritten = (value: CountOrPercent) => ('count' in value ? String(value.count) : `${value.percent}%`);

export function fleetPolicyOf(settings: Settings): FleetPolicy {
  return {
    remote: requireRemote(settings).display,
    'max-parallel': asWritten(settings.maxParallel),
    'min-healthy': asWritten(settings.minHealthy),
    canary: asWritten(settings.canary),
    'canary-promote': settings.canaryPromote,
    'bake-time': String(settings.bakeTimeMs / 1000),
    'max-failed-hosts': String(settings.maxFailedHosts),
    'fleet-lease': String(settings.fleetLeaseMs / 1000),
  };
}

/** Each setting where this member differs from the fleet, as "key = ours (the fleet's: theirs)". */
export function policyDifferences(ours: FleetPolicy, fleets: Partial<FleetPolicy>): string[] {
  return (Object.keys(ours) as Array<keyof FleetPolicy>)
    .filter((key) => fleets[key] !== undefined && fleets[key] !== ours[key])
    .map((key) => `${key} = ${ours[key]} (the fleet's: ${fleets[key]})`);
}
