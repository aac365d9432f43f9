// SIGTERM and SIGINT, caught from the first instant of the process: the CLI imports this module
// before any other, so these handlers are installed before yargs, the config and the fetchers
// load (a few hundred milliseconds). A stop in that time used to end the process by the signal
// (exit 143) where the README promises 0. The daemon and -f add their own listeners later and
// look here for a stop that came before them. SIGHUP is caught as early for the same reason (its
// default ends the process); a daemon checks at start anyway, so an early one asks for nothing more.
const controller = new AbortController();
let received: NodeJS.Signals | undefined;

const onStop = (signalName: NodeJS.Signals) => {
  received ??= signalName;
  controller.abort();
};
const ignoreHangUp = () => undefined;
process.on('SIGTERM', onStop);
process.on('SIGINT', onStop);
process.on('SIGHUP', ignoreHangUp);

/**
 * For the commands beside the agent's run (status, rollback, fleet...): a stop ends them at once,
 * as it always did (Ctrl-C on a fleet status waiting for Redis). A stop that came already does so now.
 */
export function stopEndsTheProcess(): void {
  process.removeListener('SIGTERM', onStop);
  process.removeListener('SIGINT', onStop);
  process.removeListener('SIGHUP', ignoreHangUp);
  if (received) process.kill(process.pid, received);
}

/** Aborted at the first SIGTERM or SIGINT this process received, whenever it came. */
export const stopRequested: AbortSignal = controller.signal;

/** The signal that asked for the stop, if one did. */
export const stopSignalName = (): NodeJS.Signals | undefined => received;
