// Whole processes timed from outside, the same way for ours and for every reference tool: a
// monotonic nanosecond clock around spawn and reap, the CPU the kernel accounted, and the peak
// resident memory of the largest process of the tree (bench/timed.py). Contenders run in turn
// within each repetition (ours, then each reference), so a machine that drifts slows all alike.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const timer = join(fileURLToPath(new URL('.', import.meta.url)), 'timed.py');

export interface Measurement {
  seconds: number;
  cpuSeconds: number;
  /** User-space CPU alone: the system part varies with the disk and the VM far more (bench/history-drift.ts). */
  userSeconds: number;
  peakMiB: number;
  stdout: string;
  stderr: string;
}

export async function measure(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; allowFailure?: boolean } = {}): Promise<Measurement> {
  const result = await run('python3', [timer, command, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    maxBuffer: 256 << 20,
  });
  const line = result.stderr.split('\n').findLast((text) => text.startsWith('@@timed '));
  if (!line) throw new Error(`no timing from ${command}: ${result.stderr.slice(-500)}`);
  const timed = JSON.parse(line.slice('@@timed '.length)) as { wallNs: number; userS: number; systemS: number; peakKiB: number; exitCode: number };
  if (timed.exitCode !== 0 && !options.allowFailure) {
    throw new Error(`${command} ${args.join(' ')} exited with ${timed.exitCode}: ${result.stderr.slice(-1500)}`);
  }
  return { seconds: timed.wallNs / 1e9, cpuSeconds: timed.userS + timed.systemS, userSeconds: timed.userS, peakMiB: timed.peakKiB / 1024, stdout: result.stdout, stderr: result.stderr };
}

/** The spread of one figure over the repetitions. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

export const spreadOf = (values: number[]): Spread => ({ median: median(values), min: Math.min(...values), max: Math.max(...values), values });

export interface Summary {
  seconds: Spread;
  cpuSeconds: Spread;
  userSeconds: Spread;
  peakMiB: Spread;
  runs: Measurement[];
}

const summarise = (runs: Measurement[]): Summary => ({
  seconds: spreadOf(runs.map((run) => run.seconds)),
  cpuSeconds: spreadOf(runs.map((run) => run.cpuSeconds)),
  userSeconds: spreadOf(runs.map((run) => run.userSeconds)),
  peakMiB: spreadOf(runs.map((run) => run.peakMiB)),
  runs,
});

/**
 * Each repetition runs every contender once, in the order given, with `before` run ahead of each
 * (to clean up and let the disk settle), and one unrecorded warm-up round first.
 */
export async function alternate<Name extends string>(
  repetitions: number,
  contenders: Record<Name, () => Promise<Measurement>>,
  before?: (name: Name) => Promise<void>,
): Promise<Record<Name, Summary>> {
  const names = Object.keys(contenders) as Name[];
  const runs = Object.fromEntries(names.map((name) => [name, [] as Measurement[]])) as Record<Name, Measurement[]>;
  for (let round = 0; round <= repetitions; round++) {
    for (const name of names) {
      await before?.(name);
      const measurement = await contenders[name]();
      if (round > 0) runs[name].push(measurement);
    }
  }
  return Object.fromEntries(names.map((name) => [name, summarise(runs[name])])) as Record<Name, Summary>;
}

/** The cleanup half of a test context, so the test helpers' servers run in the bench too. */
export function cleanupContext() {
  const cleanups: Array<() => unknown> = [];
  return {
    context: { after: (fn: () => unknown) => void cleanups.push(fn) } as unknown as import('node:test').TestContext,
    async cleanup() {
      for (const fn of cleanups.reverse()) await fn();
    },
  };
}

const packageOf: Record<string, string> = { bsdtar: 'libarchive-tools', 'redis-server': 'redis-server', python3: 'python3' };

export async function requireTools(...tools: string[]): Promise<void> {
  const missing: string[] = [];
  for (const tool of tools) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => missing.push(tool));
  }
  if (missing.length) throw new Error(`the benchmarks need ${missing.join(', ')}: apt-get install ${missing.map((tool) => packageOf[tool] ?? tool).join(' ')}`);
}
