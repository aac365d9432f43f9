// repo-deploy history [--json] [--since WHEN] [--limit N] [--verify]: the deploy history, newest
// last, or the proof that it is whole. Reads only; needs no lock (an append is one line).
import type { AgentContext } from '../core/agent-context.js';
import { usageError } from '../base/errors.js';
import { oneLine } from '../base/log.js';
import { shortRevision } from '../core/short-revision.js';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { historyFilesIn, readAllLines, type StoredEntry } from './chain-file.js';
import { verifyChain } from './verify-chain.js';

export interface HistoryOptions {
  json: boolean;
  since?: string;
  limit?: number;
  verify: boolean;
}

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "2h", "7d", "30m" back from now, or an ISO date or time. */
export function parseSince(text: string, now: Date): Date {
  const relative = /^(\d+)\s*([smhd])$/.exec(text.trim());
  if (relative) return new Date(now.getTime() - Number(relative[1]) * (units[relative[2] as string] as number));
  const absolute = Date.parse(text);
  if (Number.isNaN(absolute)) throw usageError(`--since "${text}" is neither a time (2026-12-03T04:00Z) nor a duration back from now (30m, 2h, 7d)`, 'e.g. repo-deploy history --since 2h');
  return new Date(absolute);
}

/** Returns the exit code: 8 when --verify finds the chain broken. */
export async function historyCommand(context: AgentContext, options: HistoryOptions, print: (line: string) => void): Promise<number> {
  const files = historyFilesIn(cacheLayoutFor(context.settings.cache).history);
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) throw usageError(`--limit ${options.limit} is not a whole number of entries of at least 1`, 'e.g. repo-deploy history --limit 20');
  if (options.verify) {
    const report = await verifyChain(files);
    if (options.json) print(JSON.stringify(report, null, 2));
    else {
      for (const problem of report.problems) print(`broken: ${problem}`);
      for (const note of report.notes) print(`note:   ${note}`);
      print(report.problems.length === 0 ? `the history is whole: ${report.entries} entries, each chained to the one before` : `the history was changed: ${report.problems.length} problem${report.problems.length > 1 ? 's' : ''} in ${report.entries} entries`);
    }
    return report.problems.length === 0 ? 0 : 8;
  }
  const since = options.since === undefined ? undefined : parseSince(options.since, context.now());
  const { lines, partial } = await readAllLines(files);
  let entries: StoredEntry[] = [];
  for (const { text } of lines) {
    try {
      entries.push(JSON.parse(text) as StoredEntry);
    } catch {
      // Reported by --verify; a reader still sees the rest.
    }
  }
  if (since) entries = entries.filter((entry) => Date.parse(entry.time) >= since.getTime());
  if (options.limit !== undefined) entries = entries.slice(-options.limit);
  if (options.json) {
    for (const entry of entries) print(JSON.stringify(entry));
    return 0;
  }
  if (entries.length === 0) print(since ? `no history entries since ${since.toISOString()}` : 'no history yet');
  for (const entry of entries) print(describeEntry(entry));
  if (partial !== undefined) print('(the last line is partial: an append was cut short by a crash; the next entry written repairs it)');
  return 0;
}

function describeEntry(entry: StoredEntry): string {
  const text = (key: string) => (typeof entry[key] === 'string' ? (entry[key] as string) : undefined);
  const parts = [`${entry.time}  #${entry.seq}  ${entry.event}`];
  const from = text('revisionFrom');
  const to = text('revisionTo');
  if (to) parts.push(from ? `${shortRevision(from)} -> ${shortRevision(to)}` : shortRevision(to));
  if (text('release')) parts.push(`release ${text('release')}`);
  const commit = entry.commit as { subject?: unknown; author?: unknown } | undefined;
  if (typeof commit?.subject === 'string') parts.push(`"${commit.subject}"${typeof commit.author === 'string' ? ` (${commit.author})` : ''}`);
  const files = entry.files as { added: number; changed: number; removed: number } | undefined;
  if (files) parts.push(`files +${files.added} ~${files.changed} -${files.removed}`);
  if (typeof entry.durationMs === 'number') parts.push(`${(entry.durationMs / 1000).toFixed(1)} s`);
  if (text('reason')) parts.push(`reason: ${text('reason')}`);
  if (text('error')) parts.push(`error: ${text('error')}`);
  if (text('note')) parts.push(text('note') as string);
  parts.push(`by ${text('by') ?? 'unknown'}`);
  // Every field may hold a pusher's or a server's words: printed escaped, on one line.
  return oneLine(parts.join('  '));
}
