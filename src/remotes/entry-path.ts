// The path an archive entry may have in a release, the same for every archive format (zip, tar):
// relative, no "..", no drive or backslash, no control character, no name or path longer than a
// filesystem allows. Anything else rejects the whole archive.
import { mkdirSync } from 'node:fs';
import { dirname, posix } from 'node:path';
import { fetchError } from '../base/errors.js';

// Names a filesystem accepts: 255 bytes a name, 4095 a path (Linux's NAME_MAX and PATH_MAX - 1).
const longestName = 255;
const longestPath = 4095;

export const rejected = (archiveName: string, entryName: string, reason: string) =>
  fetchError(`archive ${archiveName} rejected: entry "${entryName}" ${reason}; nothing was deployed`);

/**
 * The entry's path in the release (normalised: no "." parts, no trailing slash), or undefined for
 * the root itself ("./"). `raw`: the name's bytes as stored, when the format keeps them apart.
 */
export function releasePathOf(name: string, archiveName: string, raw: Uint8Array = Buffer.from(name)): string | undefined {
  if (raw.some((byte) => byte < 0x20 || byte === 0x7f)) {
    throw rejected(archiveName, JSON.stringify(Buffer.from(raw).toString('utf8')).slice(1, -1), 'has a control character in its name');
  }
  if (name.includes('\\') || name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.includes('\0')) {
    throw rejected(archiveName, name, 'has an absolute or drive path or a backslash');
  }
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw rejected(archiveName, name, 'climbs out with ".."');
  if (parts.length === 0) return undefined;
  const tooLong = parts.find((part) => Buffer.byteLength(part) > longestName);
  if (tooLong !== undefined || Buffer.byteLength(parts.join('/')) > longestPath - 256) {
    throw rejected(archiveName, name.length > 80 ? `${name.slice(0, 80)}...` : name, `has a name longer than a filesystem allows (${longestName} bytes a name, ${longestPath} a path)`);
  }
  return parts.join('/');
}

/** Entries below a symlink or a file would be written through the link, or cannot exist: the first such is rejected. */
export function rejectEntriesBelowLinksOrFiles(entries: Iterable<{ path: string; name: string }>, kinds: Map<string, string>, archiveName: string): void {
  for (const item of entries) {
    for (let parent = posix.dirname(item.path); parent !== '.'; parent = posix.dirname(parent)) {
      const parentKind = kinds.get(parent);
      if (parentKind === 'symlink' || parentKind === 'file') throw rejected(archiveName, item.name, `lies below "${parent}", which is a ${parentKind}`);
    }
  }
}

/**
 * Makes directories below `root` as entries need them, each once: a set of those made saves a
 * mkdir call per file (extraction writes thousands into the same few directories).
 */
export function directoryMaker(root: string): (path: string) => void {
  const made = new Set<string>([root]);
  return (path) => {
    if (made.has(path)) return;
    mkdirSync(path, { recursive: true, mode: 0o755 });
    for (let current = path; current !== root && !made.has(current); current = dirname(current)) made.add(current);
  };
}
