// The deploy history on disk: JSON Lines in <cache>/history/, each entry holding the sha256 of
// the line before it, so that an edited, removed or reordered line breaks the chain where it is.
// A head file beside (seq and hash of the last entry, written after each append) catches lines
// cut off the end, which a chain alone cannot. The current file is rotated by size into
// history-<first seq>.jsonl, the chain carried on: the first entry of the new file names the
// last of the old. Appends take their own flock (pause and resume write without the agent's
// lock), write one line with O_APPEND and flush it; a kill -9 mid-write leaves a partial last
// line, which the next append cuts off and records as an entry of its own.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, open, readdir, readFile, rename, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory, writeFileAtomically } from '../base/atomic-file.js';
import { writeWhole } from '../base/write-whole.js';
import { tryFileLocks, type HeldFileLock } from '../base/file-lock.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import { redact } from '../base/redact.js';
import { pausePoint } from '../base/test-pause.js';

export const zeroHash = '0'.repeat(64);

export interface HistoryFiles {
  directory: string;
  current: string;
  head: string;
  lock: string;
}

/** The files of the history directory (the cache layout's `history`). */
export function historyFilesIn(directory: string): HistoryFiles {
  return { directory, current: join(directory, 'history.jsonl'), head: join(directory, 'head.json'), lock: join(directory, '.lock') };
}

/** One entry as stored: the event's fields plus seq, time and the previous entry's hash. */
export interface StoredEntry {
  seq: number;
  time: string;
  event: string;
  prev: string;
  [field: string]: unknown;
}

export const hashOfLine = (line: string) => createHash('sha256').update(line).digest('hex');

/** Rotated files, oldest first: history-<first seq, 12 digits>.jsonl. */
export async function rotatedFiles(files: HistoryFiles): Promise<string[]> {
  const names = await readdir(files.directory).catch(() => [] as string[]);
  return names.filter((name) => /^history-\d{12}\.jsonl$/.test(name)).sort().map((name) => join(files.directory, name));
}

export interface AppendOptions {
  /** Rotate when the current file is at least this large. */
  maxFileBytes: number;
  /** Rotated files kept; older ones are removed. */
  keepFiles: number;
}

export interface Appended {
  entry: StoredEntry;
  line: string;
  hash: string;
  /** A partial last line that was cut off before this append (bytes), if any. */
  cutPartialBytes?: number;
}

/**
 * Appends `fields` (redacted: no secret reaches the history) as the next entry. Waits for the
 * history lock a short while (appends take milliseconds). Returns what was written, preceded by a
 * "history-repaired" entry when a partial last line had to be cut off.
 */
export async function appendEntry(files: HistoryFiles, fields: { event: string; time: string; [field: string]: unknown }, options: AppendOptions): Promise<Appended[]> {
  await ensureOwnDirectory(files.directory);
  // Private: entries name hooks, revisions and operators, none of which others need to read.
  await chmod(files.directory, 0o700);
  const lock = await takeHistoryLock(files.lock);
  try {
    const written: Appended[] = [];
    let { last, partialBytes } = await lastCompleteLine(files);
    if (partialBytes > 0) {
      const size = (await stat(files.current)).size;
      await truncate(files.current, size - partialBytes);
      const repair = await writeLine(files, { event: 'history-repaired', time: fields.time, note: `a partial last line of ${partialBytes} bytes (an append cut short by a crash, or written by someone else) was cut off` }, last);
      repair.cutPartialBytes = partialBytes;
      written.push(repair);
      last = { line: repair.line, entry: repair.entry };
    }
    if (last && (await stat(files.current).catch(() => undefined))?.size! >= options.maxFileBytes) await rotate(files, options.keepFiles);
    written.push(await writeLine(files, fields, last));
    return written;
  } finally {
    await lock.release();
  }
}

async function takeHistoryLock(path: string): Promise<HeldFileLock> {
  for (let attempt = 0; ; attempt++) {
    const taken = await tryFileLocks([path]);
    if ('locks' in taken) return taken.locks[0]!;
    if (attempt > 200) throw new Error(`the history lock ${path} is held by another process for more than 10 s`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
}

async function writeLine(files: HistoryFiles, fields: { event: string; time: string; [field: string]: unknown }, last: { line: string; entry: StoredEntry } | undefined): Promise<Appended> {
  const prev = last ? hashOfLine(last.line) : await carriedHash(files);
  const seq = last ? last.entry.seq + 1 : (await carriedSeq(files)) + 1;
  const { event, time, ...rest } = fields;
  const entry = JSON.parse(redact(JSON.stringify({ seq, time, event, ...rest, prev }))) as StoredEntry;
  const line = JSON.stringify(entry);
  const handle = await open(files.current, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  const hash = hashOfLine(line);
  const { size: sizeBefore } = await handle.stat();
  try {
    const bytes = Buffer.from(line + '\n');
    // Two writes around a test pause point: a test can kill -9 the agent between them.
    const half = process.env.REPO_DEPLOY_TEST_PAUSE_AT === 'history append' ? bytes.length >> 1 : bytes.length;
    await writeWhole(handle, bytes.subarray(0, half));
    await pausePoint('history append');
    await writeWhole(handle, bytes.subarray(half));
    await handle.sync();
    await writeFileAtomically(files.head, JSON.stringify({ seq, hash }) + '\n');
  } catch (error) {
    // All or nothing (a full disk): a line the head does not name is taken back, so that the
    // head never lags by more than the one line a kill -9 can leave, and --verify does not take
    // lines the agent wrote for lines someone else added.
    await handle.truncate(sizeBefore).catch(() => undefined);
    throw error;
  } finally {
    await handle.close();
  }
  return { entry, line, hash };
}

/** With an empty current file (just rotated): the last entry of the newest rotated file carries the chain. */
async function carriedHash(files: HistoryFiles): Promise<string> {
  const last = await lastOfRotated(files);
  return last ? hashOfLine(last.line) : zeroHash;
}

async function carriedSeq(files: HistoryFiles): Promise<number> {
  const last = await lastOfRotated(files);
  if (last) return last.entry.seq;
  // Everything was removed: the head still knows how far the history went.
  const head = await readHead(files);
  return head?.seq ?? 0;
}

async function lastOfRotated(files: HistoryFiles): Promise<{ line: string; entry: StoredEntry } | undefined> {
  const rotated = await rotatedFiles(files);
  const newest = rotated.at(-1);
  if (!newest) return undefined;
  const lines = (await readFile(newest, 'utf8')).split('\n').filter(Boolean);
  const line = lines.at(-1);
  return line ? { line, entry: JSON.parse(line) as StoredEntry } : undefined;
}

export async function readHead(files: HistoryFiles): Promise<{ seq: number; hash: string } | undefined> {
  try {
    const head = JSON.parse(await readFile(files.head, 'utf8')) as { seq: number; hash: string };
    return typeof head.seq === 'number' && typeof head.hash === 'string' ? head : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The last complete line of the current file, and the length of a partial line after it. Reads
 * only the file's tail (appends must not get slower as the file grows).
 */
async function lastCompleteLine(files: HistoryFiles): Promise<{ last: { line: string; entry: StoredEntry } | undefined; partialBytes: number }> {
  let handle;
  try {
    handle = await open(files.current, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { last: undefined, partialBytes: 0 };
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return { last: undefined, partialBytes: 0 };
    for (let window = 64 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      const end = buffer.lastIndexOf(0x0a);
      if (end < 0 && start > 0) continue;
      const partialBytes = buffer.length - (end + 1);
      if (end < 0) return { last: undefined, partialBytes };
      const before = buffer.lastIndexOf(0x0a, end - 1);
      if (before < 0 && start > 0) continue;
      const line = buffer.subarray(before + 1, end).toString('utf8');
      try {
        return { last: { line, entry: JSON.parse(line) as StoredEntry }, partialBytes };
      } catch {
        // A junk last line (edited by hand): the chain goes on from it; verify reports it.
        return { last: { line, entry: { seq: Number.NaN, time: '', event: 'unreadable', prev: '' } }, partialBytes };
      }
    }
  } finally {
    await handle.close();
  }
}

async function rotate(files: HistoryFiles, keepFiles: number): Promise<void> {
  const first = (await readFile(files.current, 'utf8')).split('\n', 1)[0] ?? '';
  let firstSeq = 0;
  try {
    firstSeq = (JSON.parse(first) as StoredEntry).seq;
  } catch {
    // Unreadable first line: named by the time instead, still after every older file.
  }
  const name = join(files.directory, `history-${String(firstSeq).padStart(12, '0')}.jsonl`);
  await rename(files.current, name);
  await syncDirectory(files.directory);
  const rotated = await rotatedFiles(files);
  for (const old of rotated.slice(0, Math.max(0, rotated.length - keepFiles))) await unlink(old);
}

/** Every stored line, oldest first, with the file it is in; a partial last line is returned apart. */
export async function readAllLines(files: HistoryFiles): Promise<{ lines: Array<{ file: string; number: number; text: string }>; partial?: string }> {
  const lines: Array<{ file: string; number: number; text: string }> = [];
  let partial: string | undefined;
  for (const file of [...(await rotatedFiles(files)), files.current]) {
    let text: string;
    try {
      const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const parts = text.split('\n');
    const tail = parts.pop();
    if (tail && file === files.current) partial = tail;
    else if (tail) parts.push(tail);
    parts.forEach((line, index) => lines.push({ file, number: index + 1, text: line }));
  }
  return { lines, partial };
}
