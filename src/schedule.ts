// Cron expressions, checked at start with an error that names the bad field (node-cron's
// validator), and by cron-parser, which the daemon's loop uses to compute the next tick.
import { usageError } from './errors.js';

export async function validateSchedule(expression: string): Promise<void> {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw usageError(
      `schedule "${expression}" has ${fields.length} fields; a cron expression has 5 (minute hour day month weekday) or 6 (seconds first)`,
    );
  }
  const { validateDetailed } = await import('node-cron');
  const result = validateDetailed(expression);
  if (!result.valid) {
    const problems = result.errors.map((error) => `${error.field}${error.value ? ` "${error.value}"` : ''}: ${error.message}`);
    throw usageError(`schedule "${expression}" is not a valid cron expression: ${problems.join('; ')}`);
  }
  const { CronExpressionParser } = await import('cron-parser');
  try {
    CronExpressionParser.parse(expression);
  } catch (error) {
    throw usageError(`schedule "${expression}" is not a valid cron expression: ${error instanceof Error ? error.message : String(error)}`);
  }
}
