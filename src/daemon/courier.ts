// The daemon's notifications for one app: the outbox is drained after each check and again when
// a postponed message falls due, in the background (a check never waits for a receiver), one
// drain at a time. On stop, a drain under way ends within notify-timeout; what is left waits on
// disk for the next start.
import type { AgentContext } from '../core/agent-context.js';

export class Courier {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly context: Pick<AgentContext, 'settings' | 'log' | 'now'>) {}

  /** Drains now (or right after the drain under way). */
  kick(): void {
    if (this.stopped || this.context.settings.notify.length === 0) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async drain(): Promise<void> {
    const { deliverDue } = await import('../notify/notifier.js');
    const result = await deliverDue(this.context, this.context.settings.notifyTimeoutMs);
    clearTimeout(this.timer);
    if (result.nextDueAt === undefined || this.stopped) return;
    const wait = Math.max(1000, result.nextDueAt - this.context.now().getTime());
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
