// A wait that an abort cuts short: the daemon's sleep between checks, the health gate's between tries.

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolveSleep) => {
    if (signal.aborted) return resolveSleep();
    // setTimeout cannot wait longer than 2^31 - 1 ms (about 24.8 days): a caller that must, loops.
    const timer = setTimeout(finish, Math.min(ms, 2 ** 31 - 1));
    function finish() {
      clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      resolveSleep();
    }
    signal.addEventListener('abort', finish, { once: true });
  });
}
