// Sends what the outbox holds, oldest first, each message at most once per drain: a 2xx removes
// it, anything else (an error status, a refused connection, a receiver that hangs past
// notify-timeout) postpones it with backoff. A drain never throws and never waits past its
// deadline: a deploy is never held up or failed by a notification. One drain at a time per
// outbox (a lock file beside it); a second one finds it taken and leaves.
import { join } from 'node:path';
import { Agent, request } from '../base/http-client.js';
import { tryFileLocks } from '../base/file-lock.js';
import { messageOf } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import { requestFor, type OutgoingRequest } from './messages.js';
import { clearDropped, droppedCount, messageNames, postpone, readMessage, removeMessage, targetKey, type OutboxMessage } from './outbox.js';
import type { NotifyTarget } from './targets.js';

export interface DrainOptions {
  directory: string;
  targets: NotifyTarget[];
  secret: string | undefined;
  log: Logger;
  now: () => Date;
  /** Per request: connect, headers and body each. */
  timeoutMs: number;
  /** The drain stops starting requests past this instant (ms since the epoch). */
  deadline: number;
}

export interface DrainResult {
  delivered: number;
  postponed: number;
  /** Left for later: not yet due, or past the deadline. */
  waiting: number;
  /** The soonest instant a waiting message is due (ms since the epoch), if any. */
  nextDueAt?: number;
}

/** A receiver's answer is read at most this far (a receiver that streams forever is cut off). */
const largestAnswer = 16 << 10;

export async function drainOutbox(options: DrainOptions): Promise<DrainResult> {
  const result: DrainResult = { delivered: 0, postponed: 0, waiting: 0 };
  const { directory, log } = options;
  try {
    // Most runs have nothing to send: no directory made, no lock taken.
    if ((await messageNames(directory)).length === 0) return result;
    await ensureOwnDirectory(directory);
    const taken = await tryFileLocks([join(directory, '.lock')]);
    if (!('locks' in taken)) return result;
    const dispatcher = new Agent({ connectTimeout: options.timeoutMs, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs });
    try {
      await drainLocked(options, dispatcher, result);
    } finally {
      await dispatcher.destroy().catch(() => undefined);
      await taken.locks[0]!.release();
    }
  } catch (error) {
    log.warn(`notifications could not be sent (${messageOf(error)}); they stay in ${directory} for the next try`);
  }
  return result;
}

/**
 * Each target's messages in order, the targets side by side: a receiver that hangs delays only
 * its own messages, and costs one notify-timeout per drain (after a failure its other messages
 * wait for the next drain).
 */
async function drainLocked(options: DrainOptions, dispatcher: Agent, result: DrainResult): Promise<void> {
  const { directory, targets, log } = options;
  const byKey = new Map(targets.map((target) => [targetKey(target), target]));
  const queues = new Map<string, Array<{ name: string; message: OutboxMessage }>>();
  for (const name of await messageNames(directory)) {
    const message = await readMessage(directory, name);
    if (!message) continue;
    if (!byKey.has(message.target)) {
      log.info(`a notification of entry ${message.entry.seq} for a target no longer in notify was dropped`);
      await removeMessage(directory, name);
      continue;
    }
    queues.set(message.target, [...(queues.get(message.target) ?? []), { name, message }]);
  }
  const dropped = { count: await droppedCount(directory) };
  await Promise.all([...queues].map(([key, queue]) => drainTarget(options, dispatcher, byKey.get(key)!, queue, dropped, result)));
}

async function drainTarget(options: DrainOptions, dispatcher: Agent, target: NotifyTarget, queue: Array<{ name: string; message: OutboxMessage }>, dropped: { count: number }, result: DrainResult): Promise<void> {
  const { directory, log } = options;
  let failed = false;
  for (const { name, message } of queue) {
    const now = options.now().getTime();
    if (failed || message.nextAttemptAt > now || now >= options.deadline) {
      result.waiting++;
      result.nextDueAt = Math.min(result.nextDueAt ?? Number.POSITIVE_INFINITY, Math.max(message.nextAttemptAt, now));
      continue;
    }
    const told = dropped.count;
    const summary = told > 0 ? `${message.summary} (${told} older notification${told > 1 ? 's were' : ' was'} dropped: the outbox was full)` : message.summary;
    const failure = await send(target, requestFor(target, message.entry, summary, message.id, options.secret), dispatcher, options.timeoutMs);
    if (failure === undefined) {
      await removeMessage(directory, name);
      result.delivered++;
      if (told > 0 && dropped.count === told) {
        dropped.count = 0;
        await clearDropped(directory);
      }
      continue;
    }
    failed = true;
    const waited = await postpone(directory, name, message, failure, options.now());
    result.postponed++;
    result.nextDueAt = Math.min(result.nextDueAt ?? Number.POSITIVE_INFINITY, waited.nextAttemptAt);
    log.warn(`notification of ${message.entry.event} (entry ${message.entry.seq}) to ${target.display} not delivered: ${failure}; try ${waited.attempts + 1} in ${Math.round((waited.nextAttemptAt - options.now().getTime()) / 1000)} s`);
  }
}

/** One POST; undefined when the target took it (2xx), else why not. */
async function send(target: NotifyTarget, outgoing: OutgoingRequest, dispatcher: Agent, timeoutMs: number): Promise<string | undefined> {
  try {
    const answer = await request(target.url, { method: 'POST', headers: { ...outgoing.headers, 'user-agent': 'repo-deploy' }, body: outgoing.body, dispatcher, signal: AbortSignal.timeout(timeoutMs) });
    await discard(answer.body);
    return answer.statusCode >= 200 && answer.statusCode <= 299 ? undefined : `it answered ${answer.statusCode}`;
  } catch (error) {
    return messageOf(error);
  }
}

async function discard(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<void> {
  let read = 0;
  for await (const chunk of body) {
    read += chunk.length;
    if (read > largestAnswer) {
      body.destroy();
      return;
    }
  }
}
