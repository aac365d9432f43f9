// Deploy windows: `deploy-window = <cron> <duration>[; <cron> <duration>...]`. Each tick of a
// window's cron expression (in deploy-window-timezone) opens it for its duration; an update may
// start only while one is open. Checks run regardless; a rollback by an operator is never held.
import { usageError } from '../base/errors.js';

export interface DeployWindow {
  /** The entry as the operator wrote it, for messages. */
  text: string;
  cron: string;
  durationMs: number;
}

export type WindowState = { open: true; closesAt: Date } | { open: false; opensAt: Date | undefined };

const durationUnits: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

/** "8h", "1h30m", "45m", "2d": undefined when the text is not such a duration. */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+[dhms])+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)([dhms])/g)) total += Number(amount) * (durationUnits[unit as string] as number);
  return total > 0 ? total : undefined;
}

/** Splits the setting into entries and reads each duration; the cron fields are checked by validateDeployWindows. */
export function parseDeployWindows(value: string, source: string): DeployWindow[] {
  return value
    .split(';')
    .map((entry) => entry.trim().replace(/\s+/g, ' '))
    .filter(Boolean)
    .map((text) => {
      const fields = text.split(' ');
      const duration = fields.pop() ?? '';
      const durationMs = parseDuration(duration);
      if (fields.length !== 5 && fields.length !== 6) {
        throw usageError(`${source}: the deploy-window entry "${text}" is not "<cron expression> <duration>"`, 'write e.g. "0 9 * * 1-5 8h" (weekdays from 09:00 for 8 hours); separate entries with ";"');
      }
      if (durationMs === undefined) {
        throw usageError(`${source}: the deploy-window entry "${text}" ends in "${duration}", which is not a duration`, 'end each entry with a duration such as 8h, 90m or 1h30m');
      }
      return { text, cron: fields.join(' '), durationMs };
    });
}

/** Every entry's cron expression parses in the time zone given. */
export async function validateDeployWindows(windows: readonly DeployWindow[], timeZone: string | undefined): Promise<void> {
  const { CronExpressionParser } = await import('../base/lazy/cron-parser.js');
  for (const window of windows) {
    try {
      CronExpressionParser.parse(window.cron, { tz: timeZone });
    } catch (error) {
      throw usageError(`the deploy-window entry "${window.text}" has no valid cron expression: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** An IANA time zone name such as Europe/Berlin, checked against the runtime's own list. */
export function parseTimeZone(value: string, source: string): string {
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
    return value;
  } catch {
    throw usageError(`${source}: deploy-window-timezone = "${value}" is not a time zone`, 'give an IANA name such as Europe/Berlin or UTC');
  }
}

/**
 * Whether a window is open at `now`: some window's latest tick at or before now is less than
 * its duration ago. When none is, when the next one opens.
 */
export async function windowStateAt(windows: readonly DeployWindow[], timeZone: string | undefined, now: Date): Promise<WindowState> {
  const { CronExpressionParser } = await import('../base/lazy/cron-parser.js');
  let closesAt: Date | undefined;
  let opensAt: Date | undefined;
  for (const window of windows) {
    // From a millisecond on, so that a tick at exactly `now` counts as the latest one.
    const latest = CronExpressionParser.parse(window.cron, { currentDate: new Date(now.getTime() + 1), tz: timeZone }).prev().toDate();
    const end = new Date(latest.getTime() + window.durationMs);
    if (end > now && (!closesAt || end > closesAt)) closesAt = end;
    const next = CronExpressionParser.parse(window.cron, { currentDate: now, tz: timeZone }).next().toDate();
    if (!opensAt || next < opensAt) opensAt = next;
  }
  return closesAt ? { open: true, closesAt } : { open: false, opensAt };
}
