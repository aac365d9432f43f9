// The one place the agent starts a child process (hooks, git, ssh-keygen, gpg). Each child leads
// its own process group so that a timeout or a stop ends it together with everything it started.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Readable } from 'node:stream';

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL when the child must be ended. */
  killGraceMs?: number;
  /** Aborting ends the child as a timeout does, once abortGraceMs has passed. */
  signal?: AbortSignal;
  /** Time the child may go on after `signal` aborts, to finish what it is doing. */
  abortGraceMs?: number;
  onLine(line: string, stream: 'stdout' | 'stderr'): void;
  /** Told the child's pid (which is also its process group id) once it started. */
  onSpawn?(pid: number): void;
  /** A file to give the child as its standard input (otherwise it reads nothing). */
  stdinFile?: string;
}

export interface ProcessResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the process could not be started at all. */
  spawnError?: Error;
  /** The last lines it printed, for the error message. */
  outputTail: string[];
}

const tailLines = 10;
// A line longer than this is cut (and says so): a child printing one 300 MB line must not hold
// 300 MB, or more, of the agent's memory.
export const longestLine = 4096;

/**
 * Splits a stream into lines as they arrive, holding at most `longestLine` bytes of a line:
 * the rest of an over-long line is counted, not kept. (readline keeps a whole line in memory.)
 */
function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let cut = 0;
  const emit = () => {
    const text = Buffer.concat(pending).toString('utf8').replace(/\r$/, '');
    onLine(cut > 0 ? `${text}... (${cut} more bytes of this line cut)` : text);
    pending = [];
    pendingBytes = 0;
    cut = 0;
  };
  const keep = (part: Buffer) => {
    const room = longestLine - pendingBytes;
    if (part.length > room) {
      cut += part.length - room;
      part = part.subarray(0, room);
    }
    if (part.length > 0) {
      pending.push(part);
      pendingBytes += part.length;
    }
  };
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
      keep(chunk.subarray(start, newline));
      emit();
      start = newline + 1;
    }
    keep(chunk.subarray(start));
  });
  stream.on('end', () => {
    if (pendingBytes > 0 || cut > 0) emit();
  });
}
// After the child exits, output still in the pipes gets this long to arrive; a background
// process the child left holding the pipes must not keep the agent waiting.
const drainAfterExitMs = 200;

export function runProcess(command: string, args: readonly string[], options: RunOptions): Promise<ProcessResult> {
  const killGraceMs = options.killGraceMs ?? 5000;
  return new Promise((resolvePromise) => {
    const outputTail: string[] = [];
    let timedOut = false;
    let aborted = false;
    let settled = false;
    const timers: NodeJS.Timeout[] = [];

    let stdin: number | 'ignore' = 'ignore';
    try {
      if (options.stdinFile) stdin = openSync(options.stdinFile, 'r');
    } catch (error) {
      resolvePromise({ exitCode: null, signal: null, timedOut: false, aborted: false, spawnError: error as Error, outputTail: [] });
      return;
    }
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      detached: true, // its own process group, so the whole group can be signalled
      stdio: [stdin, 'pipe', 'pipe'],
    });
    if (typeof stdin === 'number') closeSync(stdin); // the child holds its own copy

    if (child.pid !== undefined) options.onSpawn?.(child.pid);

    const signalGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    const endGroup = () => {
      signalGroup('SIGTERM');
      timers.push(setTimeout(() => signalGroup('SIGKILL'), killGraceMs));
    };

    for (const [stream, name] of [[child.stdout, 'stdout'], [child.stderr, 'stderr']] as const) {
      eachLine(stream as Readable, (line) => {
        outputTail.push(line);
        if (outputTail.length > tailLines) outputTail.shift();
        options.onLine(line, name);
      });
    }

    let exited: Omit<ProcessResult, 'timedOut' | 'aborted' | 'outputTail'> | undefined;
    const finish = () => {
      if (settled || exited === undefined) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      for (const timer of timers) clearTimeout(timer);
      // A child ended for running too long or for a stop takes its leftovers with it.
      if (timedOut || aborted) signalGroup('SIGKILL');
      // The pipes are sockets: unref them so a leftover writer cannot hold the agent open.
      (child.stdout as unknown as { unref?: () => void }).unref?.();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
      resolvePromise({ ...exited, timedOut, aborted, outputTail });
    };

    const onAbort = () => {
      timers.push(
        setTimeout(() => {
          aborted = true;
          endGroup();
        }, options.abortGraceMs ?? 0),
      );
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    timers.push(
      setTimeout(() => {
        timedOut = true;
        endGroup();
      }, options.timeoutMs),
    );

    child.on('error', (error) => {
      exited = { exitCode: null, signal: null, spawnError: error };
      finish();
    });
    child.on('exit', (exitCode, signal) => {
      exited = { exitCode, signal };
      timers.push(setTimeout(finish, drainAfterExitMs));
    });
    // 'close' comes once the pipes are drained too: the usual end, with all output read.
    child.on('close', finish);
  });
}
