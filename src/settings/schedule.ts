// Cron expressions, checked at start by cron-parser, which the daemon's loop uses to compute the
// next tick; a bad one is described by node-cron's validator, which names the bad field.
import { usageError } from '../base/errors.js';

export async function validateSchedule(expression: string): Promise<void> {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw usageError(
      `schedule "${expression}" has ${fields.length} fields; a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)`,
    );
  }
  const { CronExpressionParser } = await import('../base/lazy/cron-parser.js');
  try {
    // What the daemon computes its ticks with: if it parses here, the daemon can run.
    CronExpressionParser.parse(expression);
    return;
  } catch (parseError) {
    // node-cron's validator names the bad field; it is loaded only to say what is wrong.
    const { validateDetailed } = await import('../base/lazy/node-cron.js');
    const result = validateDetailed(expression);
    const problems = result.valid ? [parseError instanceof Error ? parseError.message : String(parseError)] : result.errors.map((error) => `${error.field}${error.value ? ` "${error.value}"` : ''}: ${error.message}`);
    throw usageError(`schedule "${expression}" is not a valid cron expression: ${problems.join('; ')}`);
  }
}
