// Operators copy revisions from log lines, which show 12 characters (and no "sha256:"): a command
// that takes a revision accepts any prefix of one that names it alone, as git does.
import { usageError } from '../base/errors.js';
import { shortRevision } from '../release/failures.js';

const bare = (revision: string) => revision.replace(/^sha256:/, '').toLowerCase();
const shortestPrefix = 4;

/**
 * The one of `known` that `typed` names: the whole revision, or a prefix of at least four
 * characters (with or without "sha256:"); undefined when none does. An ambiguous prefix is a
 * usage error that lists what it matches.
 */
export function resolveRevision(typed: string, known: Iterable<string>): string | undefined {
  const candidates = [...new Set(known)];
  if (candidates.includes(typed)) return typed;
  const wanted = bare(typed.trim());
  if (wanted.length < shortestPrefix) throw usageError(`revision "${typed}" is too short to name one`, `give at least ${shortestPrefix} of its characters, as log lines show them`);
  const matches = candidates.filter((revision) => bare(revision).startsWith(wanted));
  if (matches.length > 1) {
    throw usageError(`revision "${typed}" is ambiguous: it begins ${matches.length} revisions (${matches.map((revision) => revisionForDisplay(revision, wanted.length)).join(', ')})`, 'give more of its characters');
  }
  return matches[0];
}

/** Enough characters of a revision to tell it from one that shares `shared` of them. */
function revisionForDisplay(revision: string, shared: number): string {
  return bare(revision).slice(0, Math.max(12, shared + 4)) || shortRevision(revision);
}
