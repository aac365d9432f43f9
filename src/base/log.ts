// One logger for the whole agent: a line per event with time and level, redacted before it is
// written, so no caller can leak a secret by accident.
import { redact } from './redact.js';
import { printable } from './printable.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  verbose: boolean;
  format?: LogFormat;
  write?: (line: string) => void;
  now?: () => Date;
}

/** An event is one line, whatever a library's message holds (OpenSSL's errors end in a newline). */
export const oneLine = (text: string) => printable(text.replace(/[ \t]*[\r\n]+[ \t]*/g, ' ').trim());

const levelOrder: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: LoggerOptions): Logger {
  const minimum = options.verbose ? levelOrder.debug : levelOrder.info;
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => new Date());
  const format = options.format ?? 'text';

  function emit(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (levelOrder[level] < minimum) return;
    const time = now().toISOString();
    const defined = Object.entries(fields).filter(([, value]) => value !== undefined);
    if (format === 'json') {
      write(redact(JSON.stringify({ time, level, message, ...Object.fromEntries(defined) })));
      return;
    }
    const suffix = defined.map(([key, value]) => ` ${key}=${formatValue(value)}`).join('');
    write(redact(`${time} ${level.toUpperCase().padEnd(5)} ${oneLine(message)}${suffix}`));
  }

  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}

function formatValue(value: string | number | boolean | undefined): string {
  const text = String(value);
  return printable(/[\s"=]/.test(text) ? JSON.stringify(text) : text);
}

/** A logger that drops everything, for library callers and tests that do not read logs. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The same logger with fields added to every line (an app's name, in an agent of several apps). */
export function withFields(log: Logger, fixed: LogFields): Logger {
  return {
    debug: (message, fields) => log.debug(message, { ...fixed, ...fields }),
    info: (message, fields) => log.info(message, { ...fixed, ...fields }),
    warn: (message, fields) => log.warn(message, { ...fixed, ...fields }),
    error: (message, fields) => log.error(message, { ...fixed, ...fields }),
  };
}
