// The rows of the bench's table: each figure beside its reference, the goal it is held to and
// whether it holds, with medians and the min-max over the repetitions.
import { cpus, totalmem } from 'node:os';
import type { Spread } from './measure.js';

export interface Row {
  figure: string;
  ours: string;
  reference: string;
  goal: string;
  /** undefined: a figure shown for context, with no goal of its own. */
  met: boolean | undefined;
}

export const rows: Row[] = [];

const range = (spread: Spread, format: (value: number) => string) => `${format(spread.median)} (${format(spread.min)}-${format(spread.max)})`;
const seconds = (value: number) => value.toFixed(value < 1 ? 3 : 2);
export const inSeconds = (spread: Spread) => `${range(spread, seconds)} s`;
export const inMilliseconds = (spread: Spread) => `${range(spread, (value) => (value * 1000).toFixed(0))} ms`;
export const inMiB = (spread: Spread) => `${range(spread, (value) => value.toFixed(1))} MiB`;
export const inBytes = (spread: Spread) => (spread.min === spread.max ? `${spread.median.toFixed(0)} B` : `${range(spread, (value) => value.toFixed(0))} B`);
export const ratio = (ours: number, reference: number) => `${(ours / reference).toFixed(2)}x`;

export const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

export function printTable(startedAt: Date, options: string): void {
  const header = ['figure', 'ours', 'reference', 'goal', 'holds'];
  const lines = rows.map((row) => [row.figure, row.ours, row.reference, row.goal, row.met === undefined ? '' : row.met ? 'yes' : 'NO']);
  const escape = (cell: string) => cell.replace(/\|/g, '\\|');
  const table = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((line) => `| ${line.map(escape).join(' | ')} |`)];
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  process.stdout.write(
    `\nrepo-deploy benchmarks, ${startedAt.toISOString().slice(0, 10)}, ${cpus().length} cores (${cpu}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, ${options}\n` +
      'Medians with min-max over the repetitions; ours and the references alternated in each repetition, whole processes timed from outside.\n\n' +
      `${table.join('\n')}\n`,
  );
}
