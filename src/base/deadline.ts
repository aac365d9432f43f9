// A time limit for one piece of work that also follows the agent's stop signal. Each check used
// AbortSignal.timeout() and AbortSignal.any() with the agent's long-lived signal: the first keeps
// a pending timer (and its signal) for the whole download-timeout, the second registers every
// derived signal on the parent; over 1,000 idle checks the heap kept growing. Here the timer is
// cleared and the listener removed as soon as the work ends.
export interface Deadline {
  signal: AbortSignal;
  /** Whether the time limit (not a stop) aborted the work. */
  timedOut(): boolean;
}

export async function withDeadline<T>(parent: AbortSignal, milliseconds: number, work: (deadline: Deadline) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DOMException(`took longer than ${milliseconds} ms`, 'TimeoutError'));
  }, milliseconds);
  const onStop = () => controller.abort(parent.reason);
  if (parent.aborted) onStop();
  else parent.addEventListener('abort', onStop, { once: true });
  try {
    return await work({ signal: controller.signal, timedOut: () => expired });
  } finally {
    clearTimeout(timer);
    parent.removeEventListener('abort', onStop);
  }
}
