// The config file format of the original tool: `key = value` per line, `#` comment lines, blank
// lines, values that may contain `=`. Returns raw strings with the line each came from, so that
// errors can name the line; interpreting values is config.ts's job.
import { readFile } from 'node:fs/promises';
import { usageError, systemErrorCode } from './errors.js';

export interface RawSetting {
  value: string;
  line: number;
}

/** Keys use dashes; underscores are accepted as the same key. */
export function canonicalKey(key: string): string {
  return key.trim().toLowerCase().replace(/_/g, '-');
}

export function parseConfigText(text: string, fileName: string, knownKeys: ReadonlySet<string>): Map<string, RawSetting> {
  const settings = new Map<string, RawSetting>();
  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const line = index + 1;
    const trimmed = rawLine.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const equals = trimmed.indexOf('=');
    if (equals <= 0) {
      throw usageError(`${fileName}:${line}: expected "key = value", found "${trimmed.slice(0, 60)}"`);
    }
    const key = canonicalKey(trimmed.slice(0, equals));
    const value = trimmed.slice(equals + 1).trim();
    if (!knownKeys.has(key)) {
      throw usageError(
        `${fileName}:${line}: unknown key "${trimmed.slice(0, equals).trim()}"`,
        `the known keys are: ${[...knownKeys].join(', ')}`,
      );
    }
    const earlier = settings.get(key);
    if (earlier) {
      throw usageError(`${fileName}:${line}: key "${key}" is already set on line ${earlier.line}`, 'keep one of the two');
    }
    settings.set(key, { value, line });
  });
  return settings;
}

/**
 * Reads the config file. A missing default file is fine (most settings have defaults or come
 * from flags); a missing file the operator named is an error.
 */
export async function readConfigFile(
  path: string,
  explicitlyNamed: boolean,
  knownKeys: ReadonlySet<string>,
): Promise<Map<string, RawSetting>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT' && !explicitlyNamed) return new Map();
    throw usageError(`cannot read config file ${path}: ${systemErrorCode(error) ?? String(error)}`);
  }
  return parseConfigText(text, path, knownKeys);
}
