// Timing and memory of whole commands, the same way for ours and for the reference tools:
// GNU time gives wall time and peak resident memory of the process tree's largest process.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Measurement {
  seconds: number;
  peakMb: number;
  stdout: string;
  stderr: string;
}

export async function measure(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Measurement> {
  const { stdout, stderr } = await run('/usr/bin/time', ['-f', '@@time %e %M', command, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    maxBuffer: 64 << 20,
  });
  const match = /@@time ([\d.]+) (\d+)/.exec(stderr);
  if (!match) throw new Error(`no timing from ${command}: ${stderr.slice(-500)}`);
  return { seconds: Number(match[1]), peakMb: Number(match[2]) / 1024, stdout, stderr };
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

/** Runs `once` `times` times (with `between` before each run) and returns the median of each figure. */
export async function repeat(times: number, once: () => Promise<Measurement>, between?: () => Promise<void>): Promise<{ seconds: number; peakMb: number }> {
  const results: Measurement[] = [];
  for (let index = 0; index < times; index++) {
    await between?.();
    results.push(await once());
  }
  return { seconds: median(results.map((result) => result.seconds)), peakMb: median(results.map((result) => result.peakMb)) };
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

export async function requireTools(...tools: string[]): Promise<void> {
  const missing: string[] = [];
  for (const tool of tools) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => missing.push(tool));
  }
  if (missing.length) throw new Error(`the benchmarks need ${missing.join(', ')}: apt-get install ${missing.map((tool) => (tool === '/usr/bin/time' ? 'time' : tool)).join(' ')}`);
}
