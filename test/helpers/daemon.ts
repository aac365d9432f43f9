// A running agent (the real CLI as a child process) whose log lines a test can wait for.
import type { ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { startCli, type CliResult } from './cli.js';

export interface RunningAgent {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line (seen or to come) matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number, after?: number): Promise<string>;
  done: Promise<CliResult>;
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
}

/** Starts the agent; it is killed when the test ends, whatever the test did. */
export function startAgent(t: Pick<TestContext, 'after'>, args: string[], env: NodeJS.ProcessEnv = {}): RunningAgent {
  const running = startCli(args, env);
  t.after(async () => {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
    await running.done;
  });
  const lines: string[] = [];
  let partial = '';
  let exited = false;
  // Each wait registers one check, run when lines arrive or the agent exits.
  const checks = new Set<() => void>();
  const runChecks = () => {
    for (const check of [...checks]) check();
  };
  running.child.stderr?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    runChecks();
  });
  void running.done.then(() => {
    exited = true;
    runChecks();
  });
  return {
    child: running.child,
    lines,
    done: running.done,
    waitFor(pattern, timeoutMs = 15_000, after = 0) {
      return new Promise((resolve, reject) => {
        const finish = (outcome: () => void) => {
          checks.delete(check);
          clearTimeout(deadline);
          outcome();
        };
        const check = () => {
          const found = lines.slice(after).find((line) => pattern.test(line));
          if (found !== undefined) finish(() => resolve(found));
          else if (exited) finish(() => reject(new Error(`agent exited before logging ${pattern}:\n${lines.join('\n')}`)));
        };
        const deadline = setTimeout(
          () => finish(() => reject(new Error(`no log line matched ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`))),
          timeoutMs,
        );
        checks.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (running.child.exitCode === null) running.child.kill(signal);
      return running.done;
    },
  };
}
