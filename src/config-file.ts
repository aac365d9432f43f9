// The config file format of the original tool: `key = value` per line, `#` comment lines, blank
// lines, values that may contain `=`. Returns raw strings with the line each came from, so that
// errors can name the line; interpreting values is config.ts's job.
import { readFile } from 'node:fs/promises';
import { distance as levenshtein } from 'fastest-levenshtein';
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
      const suggestion = closestKey(key, knownKeys);
      throw usageError(
        `${fileName}:${line}: unknown key "${trimmed.slice(0, equals).trim()}"${suggestion ? `; did you mean "${suggestion}"?` : ''}`,
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
    const code = systemErrorCode(error);
    if (code === 'ENOENT' && !explicitlyNamed) return new Map();
    if (code === 'ENOENT') throw usageError(`the config file ${path} does not exist`, 'check the path given with -c or REPO_DEPLOY_CONFIG');
    if (code === 'EACCES') throw usageError(`the config file ${path} cannot be read by this user`, 'run as its owner (usually root), or fix its permissions');
    throw usageError(`cannot read config file ${path}: ${code ?? String(error)}`);
  }
  return parseConfigText(text, path, knownKeys);
}

/** The known key nearest to a misspelled one (at most 3 edits away), for a "did you mean". */
export function closestKey(key: string, knownKeys: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const known of knownKeys) {
    const distance = levenshtein(key, known);
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return best;
}
