// Refused requests are logged as one line per interval with a count, not one line each: 20,000
// refused requests in 3.7 s wrote 20,000 WARN lines, drowning the log a reader needs (and filling
// its disk). The first refusal after a quiet interval is logged at once, in full; the ones after
// it within the interval are counted by reason and said in one line when the interval is over
// (at the next refusal, or when the daemon asks after a check or at its stop).
import type { Logger } from '../base/log.js';

export const refusalSummaryIntervalMs = 60_000;

export class RefusalSummary {
  private windowStartedAt = Number.NEGATIVE_INFINITY;
  private counted = new Map<string, number>();
  private lastFrom = '';

  constructor(
    private readonly log: Logger,
    private readonly now: () => Date,
    private readonly what: string,
    private readonly intervalMs = refusalSummaryIntervalMs,
  ) {}

  refused(from: string, reason: string): void {
    this.flushIfDue();
    if (this.windowStartedAt === Number.NEGATIVE_INFINITY) {
      this.windowStartedAt = this.now().getTime();
      this.log.warn(`${this.what} from ${from} refused: ${reason} (further refusals within ${this.intervalMs / 1000} s are counted in one line)`);
      return;
    }
    this.counted.set(reason, (this.counted.get(reason) ?? 0) + 1);
    this.lastFrom = from;
  }

  /** Says what was counted once the interval is over; a new interval starts at the next refusal. */
  flushIfDue(): void {
    if (this.now().getTime() - this.windowStartedAt < this.intervalMs) return;
    this.flush();
  }

  /** Says what was counted now (the daemon is stopping). */
  flush(): void {
    if (this.counted.size > 0) {
      const total = [...this.counted.values()].reduce((sum, count) => sum + count, 0);
      const reasons = [...this.counted].map(([reason, count]) => `${count} × ${reason}`).join('; ');
      this.log.warn(`${this.what}: ${total} more refused in the last ${Math.round((this.now().getTime() - this.windowStartedAt) / 1000)} s (${reasons}); the last from ${this.lastFrom}`);
    }
    this.counted = new Map();
    this.windowStartedAt = Number.NEGATIVE_INFINITY;
  }
}
