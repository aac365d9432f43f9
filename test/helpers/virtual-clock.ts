// A clock for the daemon under test: time stands still while the daemon works and jumps ahead
// exactly as far as it sleeps, so tests assert exact instants and never depend on the machine's speed.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { DaemonClock } from '../../src/daemon/daemon.js';

export class VirtualClock implements DaemonClock {
  constructor(private time: number) {}
  now = () => new Date(this.time);
  async sleep(ms: number, wake: AbortSignal): Promise<void> {
    await yieldToEventLoop();
    if (!wake.aborted) this.time += ms;
  }
}
