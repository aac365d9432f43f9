// Synchronous file work done in slices of time, between which the event loop runs (the lock's
// refresh, signals, a daemon's other checks): an asynchronous call per small file is a round trip
// through libuv's thread pool, which cost more than the file itself.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

export interface TimeSlices {
  /** Whether the slice under way has run for its time: the caller should then await `next()`. */
  readonly due: boolean;
  /** Lets the event loop run, then starts the next slice. */
  next(): Promise<void>;
}

/** Slices of `sliceMs` milliseconds, the first starting now. Checked with a plain read, not an await per item. */
export function timeSlices(sliceMs: number): TimeSlices {
  let started = performance.now();
  return {
    get due() {
      return performance.now() - started > sliceMs;
    },
    async next() {
      await yieldToEventLoop();
      started = performance.now();
    },
  };
}
