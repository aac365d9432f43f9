// Progress of a download and an extraction, for an operator watching `repo-deploy -f` on a
// terminal: bytes, rate and time left (cli-progress). Silent when stderr is not a terminal, when
// logging JSON, and in the daemon.
import type { SingleBar } from 'cli-progress';

export interface ProgressSink {
  /** Starts a bar; `total` may be unknown (0). */
  start(label: string, total: number): void;
  advance(bytes: number): void;
  stop(): void;
}

export interface TerminalProgress extends ProgressSink {
  /** Writes a log line above a bar that is drawn (the bar is drawn again below it); false when none is. */
  writeAbove(line: string): boolean;
}

const megabytes = (bytes: number) => (bytes / 1048576).toFixed(1);

export async function terminalProgress(stream: NodeJS.WriteStream): Promise<TerminalProgress> {
  const { SingleBar, Presets } = await import('./lazy/cli-progress.js');
  let bar: SingleBar | undefined;
  let done = 0;
  let total = 0;
  let started = 0;
  const payload = () => {
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    return { doneMb: megabytes(done), totalMb: total ? megabytes(total) : '?', rate: megabytes(rate) };
  };
  return {
    start(label, size) {
      done = 0;
      total = size;
      started = Date.now();
      bar = new SingleBar(
        {
          stream,
          format: `${label.padEnd(11)} [{bar}] {percentage}% | {doneMb}/{totalMb} MB | {rate} MB/s | {eta_formatted} left`,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
          // Redrawn at every tick, not only when the figures change: a log line written above it
          // (writeAbove) has taken its place.
          forceRedraw: true,
        },
        Presets.shades_classic,
      );
      bar.start(Math.max(size, 1), 0, payload());
    },
    advance(bytes) {
      done += bytes;
      bar?.update(Math.min(done, Math.max(total, 1)), payload());
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
    writeAbove(line) {
      if (!bar) return false;
      stream.write(`\r\x1b[2K${line}\n`);
      return true;
    },
  };
}
