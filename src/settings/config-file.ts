// The config file format of the original tool: `key = value` per line, `#` comment lines, blank
// lines, values that may contain `=`. Returns raw strings with the line each came from, so that
// errors can name the line; interpreting values is config.ts's job.
import { distance as levenshtein } from 'fastest-levenshtein';
import { usageError, systemErrorCode } from '../base/errors.js';
import { NotASmallFile, readSmallRegularFile } from '../base/small-file.js';

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
  // CR alone ends a line too (old Mac editors, some Windows tools): such a file read as one line
  // became one setting whose value held every other line, and ended as a git error.
  const lines = text.split(/\r\n|\r|\n/);
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
        `${fileName}:${line}: unknown key "${shortened(trimmed.slice(0, equals).trim())}"${suggestion ? `; did you mean "${suggestion}"?` : ''}`,
        // One suggestion, the closest; the whole list (54 keys on one line) helped no one.
        suggestion ? undefined : 'the README ("Config file") and etc/repo-deploy.cfg list every key',
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

/** A key as an error message shows it: a 10 MB one is cut, with its length. */
const shortened = (key: string) => (key.length > 80 ? `${key.slice(0, 60)}... (${key.length} characters)` : key);

/** A config file is a few kilobytes; anything past this was named by mistake (-c /dev/zero). */
export const maxConfigFileBytes = 1024 * 1024;

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
    text = readSmallRegularFile(path, maxConfigFileBytes, { regularOnly: false });
  } catch (error) {
    if (error instanceof NotASmallFile) throw usageError(`the config file ${path} cannot be used: ${error.message}`, 'give the path of the config file itself');
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
    // Lengths that differ by the best distance or more cannot be nearer: a 10 MB key is never
    // compared at all (each comparison took a second).
    if (Math.abs(key.length - known.length) >= bestDistance) continue;
    const distance = levenshtein(key, known);
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return best;
}
