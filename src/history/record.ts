// What the agent tells the history (and, through it, the notifications): one call per event,
// which never throws. An update's start and end are told by check/update-story.ts. A history that cannot be written (a full disk) is logged, and the deploy
// goes on: the history tells what happened, it must not change what happens.
import { hostname } from 'node:os';
import type { AgentContext } from '../core/agent-context.js';
import { messageOf } from '../base/errors.js';
import { operatorName } from '../base/operator-name.js';
import { appendEntry, historyFilesIn, type Appended } from './chain-file.js';
import { cacheLayoutFor } from '../core/cache-layout.js';

export type HistoryEventName =
  | 'update-started' | 'update-committed' | 'update-blocked' | 'update-reverted' | 'update-failed' | 'update-stopped'
  | 'update-waiting' | 'held-back' | 'refused' | 'check-failed' | 'rollback' | 'retry' | 'adopt' | 'pause' | 'resume'
  | 'fleet-halt' | 'fleet-resume' | 'recovery' | 'drift' | 'history-repaired';

export interface HistoryEvent {
  event: HistoryEventName;
  [field: string]: unknown;
}

/** Who asked: the daemon's trigger (schedule, SIGHUP, webhook and its proof), else the operator running the command. */
export function askedBy(context: AgentContext): string {
  return context.trigger ?? `operator ${operatorName(context.env)}`;
}

export async function tell(context: AgentContext, event: HistoryEvent): Promise<void> {
  const { settings, log } = context;
  if (!settings.history) return;
  let appended: Appended[];
  try {
    appended = await appendEntry(historyFilesIn(cacheLayoutFor(settings.cache).history), { time: context.now().toISOString(), host: hostname(), by: askedBy(context), ...event, event: event.event }, { maxFileBytes: settings.historyMaxSize, keepFiles: settings.historyKeepFiles });
  } catch (error) {
    log.error(`the deploy history could not be written (${messageOf(error)}); event ${event.event} is not recorded`);
    return;
  }
  for (const entry of appended) {
    if (entry.cutPartialBytes) log.warn(`the deploy history ended in a partial line of ${entry.cutPartialBytes} bytes (an append cut short by a crash); it was cut off, and entry ${entry.entry.seq} says so`);
    // Queued on disk now, sent later (notify/): a notification never holds up what is told.
    if (settings.notify.length > 0) await (await import('../notify/notifier.js')).queueEntry(context, entry.entry);
  }
}
