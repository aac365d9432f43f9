// Proves the history whole: every line parses, its seq follows the one before, its `prev` is
// the sha256 of the line before (across rotated files), and the head file names the last line.
// What it cannot prove, it says: entries rotated away before the oldest file kept.
import { hashOfLine, readAllLines, readHead, zeroHash, type HistoryFiles, type StoredEntry } from './chain-file.js';

export interface ChainReport {
  entries: number;
  /** Broken links, each one line naming the file and line. */
  problems: string[];
  /** Said but not a break: rotated-away entries, a partial last line (an append cut short). */
  notes: string[];
}

export async function verifyChain(files: HistoryFiles): Promise<ChainReport> {
  const { lines, partial } = await readAllLines(files);
  const problems: string[] = [];
  const notes: string[] = [];
  let previous: { text: string; seq: number } | undefined;
  let beforeLast: { text: string; seq: number } | undefined;
  for (const { file, number, text } of lines) {
    const where = `${file}:${number}`;
    let entry: StoredEntry;
    try {
      entry = JSON.parse(text) as StoredEntry;
      if (typeof entry.seq !== 'number' || typeof entry.prev !== 'string') throw new Error('no seq or prev');
    } catch {
      problems.push(`${where}: not a history entry (edited by hand?)`);
      beforeLast = previous;
      previous = { text, seq: Number.NaN };
      continue;
    }
    if (!previous) {
      if (entry.seq === 1 && entry.prev !== zeroHash) problems.push(`${where}: the first entry does not start the chain`);
      else if (entry.seq > 1) notes.push(`entries 1 to ${entry.seq - 1} were rotated away (or their file removed); the chain is proven from entry ${entry.seq} on`);
    } else {
      if (entry.prev !== hashOfLine(previous.text)) problems.push(`${where}: entry ${entry.seq} does not follow the line before it (that line was edited, or lines were removed or inserted)`);
      if (Number.isFinite(previous.seq) && entry.seq !== previous.seq + 1) problems.push(`${where}: entry ${entry.seq} follows entry ${previous.seq}: ${entry.seq > previous.seq + 1 ? `${entry.seq - previous.seq - 1} removed` : 'out of order'}`);
    }
    beforeLast = previous;
    previous = { text, seq: entry.seq };
  }
  const head = await readHead(files);
  if (head) {
    // The head is written just after its line: a kill -9 between the two leaves it one behind.
    const last = previous;
    const headLine = last?.seq === head.seq ? last : beforeLast?.seq === head.seq && last?.seq === head.seq + 1 ? beforeLast : undefined;
    if (!last || !(last.seq >= head.seq)) problems.push(`the history ends at entry ${Number.isFinite(last?.seq) ? last?.seq : 'unknown'}, but entry ${head.seq} was written (${files.head}): entries were cut off the end`);
    else if (!headLine) problems.push(`${last.seq - head.seq} entries after entry ${head.seq}, the last one the agent wrote, were added by someone else`);
    else if (hashOfLine(headLine.text) !== head.hash) problems.push(`entry ${head.seq}, the last one the agent wrote, is not the one written (${files.head})`);
  } else if (lines.length > 0) {
    problems.push(`the head file ${files.head} is missing or unreadable: whether entries were cut off the end cannot be told`);
  }
  if (partial !== undefined) notes.push(`a partial last line of ${Buffer.byteLength(partial)} bytes (an append cut short by a crash); the next entry written cuts it off and records that`);
  return { entries: lines.length, problems, notes };
}
