// Which history events are sent (`notify-on`): names of events, or of groups of them. By default
// what an operator must hear of: failures, reverts, holds, fleet halts, and commits.
import { usageError } from '../base/errors.js';

export const eventGroups: Record<string, readonly string[]> = {
  commits: ['update-committed'],
  failures: ['update-failed', 'update-blocked', 'check-failed', 'refused', 'recovery', 'history-repaired'],
  reverts: ['update-reverted'],
  holds: ['held-back', 'refused'],
  halts: ['fleet-halt'],
  starts: ['update-started'],
  waits: ['update-waiting'],
  operator: ['rollback', 'retry', 'adopt', 'pause', 'resume', 'fleet-halt', 'fleet-resume'],
  drift: ['drift'],
};

export const defaultNotifyOn = ['failures', 'reverts', 'holds', 'halts', 'commits'];

const allEvents = [...new Set(Object.values(eventGroups).flat()), 'update-stopped'];

/** The events `notify-on` names (empty: the default); an unknown word is a usage error listing the known ones. */
export function selectedEvents(words: readonly string[]): Set<string> {
  const chosen = new Set<string>();
  for (const word of words.length > 0 ? words : defaultNotifyOn) {
    if (word === 'all') allEvents.forEach((event) => chosen.add(event));
    else if (eventGroups[word]) eventGroups[word]!.forEach((event) => chosen.add(event));
    else if (allEvents.includes(word)) chosen.add(word);
    else throw usageError(`notify-on: "${word}" is neither an event nor a group of them`, `groups: ${Object.keys(eventGroups).join(', ')}, all; events: ${allEvents.join(', ')}`);
  }
  return chosen;
}
