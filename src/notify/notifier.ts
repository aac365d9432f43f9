// Notifications, from the deploy history to the targets of `notify`: each history entry of an
// event `notify-on` chooses is queued in the outbox (before anything is sent), then the outbox is
// drained: by -f and the commands at their end (within notify-timeout), by the daemon after each
// check and when a postponed message is due, never in the way of a deploy.
import type { AgentContext } from '../core/agent-context.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { messageOf } from '../base/errors.js';
import { drainOutbox, type DrainResult } from './deliver.js';
import { selectedEvents } from './events.js';
import { summaryOf, type QueuedEntry } from './messages.js';
import { enqueue } from './outbox.js';
import { parseTargets } from './targets.js';

/** Events of a rollout's progress: one notification per revision per fleet. Failures stay per server. */
const fleetProgressEvents = new Set(['update-started', 'update-committed']);

/** Queues the entry for every target, when its event is one notify-on chooses. Never throws. */
export async function queueEntry(context: AgentContext, entry: QueuedEntry): Promise<void> {
  const { settings, log } = context;
  if (settings.notify.length === 0) return;
  try {
    if (!selectedEvents(settings.notifyOn).has(entry.event)) return;
    // The rollout's progress, once per fleet: the first member to tell it sends it.
    const revision = typeof entry.revisionTo === 'string' ? entry.revisionTo : undefined;
    if (context.firstInFleetToTell && revision && fleetProgressEvents.has(entry.event) && !(await context.firstInFleetToTell(entry.event, revision))) {
      log.debug(`${entry.event} of ${revision.slice(0, 19)} is notified by another member of the fleet`);
      return;
    }
    await enqueue(cacheLayoutFor(settings.cache).outbox, parseTargets(settings.notify), entry, summaryOf(entry, undefined), undefined, context.now());
  } catch (error) {
    log.warn(`a notification of ${entry.event} could not be queued: ${messageOf(error)}`);
  }
}

/** Sends what is due, for at most `withinMs` of starting new requests. Never throws. */
export async function deliverDue(context: Pick<AgentContext, 'settings' | 'log' | 'now'>, withinMs: number): Promise<DrainResult> {
  const { settings } = context;
  if (settings.notify.length === 0) return { delivered: 0, postponed: 0, waiting: 0 };
  return drainOutbox({
    directory: cacheLayoutFor(settings.cache).outbox,
    targets: parseTargets(settings.notify),
    secret: settings.notifySecret,
    log: context.log,
    now: context.now,
    timeoutMs: settings.notifyTimeoutMs,
    deadline: context.now().getTime() + withinMs,
  });
}

/** At the end of -f or a command: what is due is sent within notify-timeout; the rest waits on disk. */
export async function deliverBeforeExit(context: Pick<AgentContext, 'settings' | 'log' | 'now'>): Promise<void> {
  if (context.settings.notify.length === 0) return;
  const result = await deliverDue(context, context.settings.notifyTimeoutMs);
  if (result.waiting + result.postponed > 0) context.log.info(`${result.waiting + result.postponed} notification${result.waiting + result.postponed > 1 ? 's wait' : ' waits'} in the outbox for a later run or the daemon`);
}
