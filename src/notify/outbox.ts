// The notification outbox: one file per message and target in <cache>/outbox/ (the agent's own,
// 0700), written atomically before anything is sent, removed only once the target took it (2xx):
// at least once, across kill -9 and restarts. A message that fails waits with backoff in its
// file. Bounded: beyond mostMessages the oldest are dropped, and how many is kept and said with
// the next message delivered. A target's URL is not written (it may hold a secret): a message
// names its target by a hash of the URL, and one whose target left the config is dropped.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../base/atomic-file.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import type { QueuedEntry } from './messages.js';
import type { NotifyTarget } from './targets.js';

export const mostMessages = 1000;
const firstRetryMs = 30_000;
const longestRetryMs = 3_600_000;

export interface OutboxMessage {
  /** The delivery id receivers see, the same on every try. */
  id: string;
  target: string;
  app?: string;
  entry: QueuedEntry;
  summary: string;
  createdAt: string;
  attempts: number;
  /** Milliseconds since the epoch; 0: now. */
  nextAttemptAt: number;
  lastError?: string;
}

export const targetKey = (target: NotifyTarget) => createHash('sha256').update(target.url.href).digest('hex').slice(0, 16);

const droppedFile = (directory: string) => join(directory, 'dropped.json');

/** Queues `entry` for each target; the oldest messages go when the outbox is full. */
export async function enqueue(directory: string, targets: NotifyTarget[], entry: QueuedEntry, summary: string, app: string | undefined, now: Date): Promise<void> {
  await ensureOwnDirectory(directory);
  // Private, as the history is: messages tell hosts, revisions and errors.
  await chmod(directory, 0o700);
  for (const target of targets) {
    const message: OutboxMessage = { id: `${entry.seq}-${randomBytes(6).toString('hex')}`, target: targetKey(target), app, entry, summary, createdAt: now.toISOString(), attempts: 0, nextAttemptAt: 0 };
    // Named so that the directory's order is the order of events.
    await writeFileAtomically(join(directory, `${String(now.getTime()).padStart(15, '0')}-${String(entry.seq).padStart(12, '0')}-${message.target}.json`), JSON.stringify(message), { durable: true });
  }
  const names = await messageNames(directory);
  const excess = names.slice(0, Math.max(0, names.length - mostMessages));
  for (const name of excess) await rm(join(directory, name), { force: true });
  if (excess.length > 0) await writeFileAtomically(droppedFile(directory), JSON.stringify({ dropped: (await droppedCount(directory)) + excess.length }));
}

export async function messageNames(directory: string): Promise<string[]> {
  return (await readdir(directory).catch(() => [] as string[])).filter((name) => /^\d{15}-\d{12}-[0-9a-f]{16}\.json$/.test(name)).sort();
}

/** The message in `name`, or undefined when it is gone or not one (it is then removed). */
export async function readMessage(directory: string, name: string): Promise<OutboxMessage | undefined> {
  try {
    const message = JSON.parse(await readFile(join(directory, name), 'utf8')) as OutboxMessage;
    if (typeof message.id === 'string' && typeof message.target === 'string' && typeof message.summary === 'string' && typeof message.attempts === 'number') return message;
  } catch {
    // gone, or junk
  }
  await rm(join(directory, name), { force: true });
  return undefined;
}

export const removeMessage = (directory: string, name: string) => rm(join(directory, name), { force: true });

/** A failed try: the message waits 30 s, then twice as long after each failure, at most an hour. */
export async function postpone(directory: string, name: string, message: OutboxMessage, error: string, now: Date): Promise<OutboxMessage> {
  const attempts = message.attempts + 1;
  const waited = { ...message, attempts, lastError: error, nextAttemptAt: now.getTime() + Math.min(longestRetryMs, firstRetryMs * 2 ** (attempts - 1)) };
  await writeFileAtomically(join(directory, name), JSON.stringify(waited), { durable: false });
  return waited;
}

export async function droppedCount(directory: string): Promise<number> {
  try {
    const { dropped } = JSON.parse(await readFile(droppedFile(directory), 'utf8')) as { dropped?: unknown };
    return typeof dropped === 'number' && dropped > 0 ? dropped : 0;
  } catch {
    return 0;
  }
}

export const clearDropped = (directory: string) => rm(droppedFile(directory), { force: true });
