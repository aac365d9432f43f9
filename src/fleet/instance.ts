// This agent's identity in a fleet: a random id made once and kept in its cache. Two servers with
// one host name (cloned VMs often have one) share a member record and would share its slot; the
// id tells them apart, so the second is refused while the first is alive. A lost cache makes a
// new id: the old one is forgotten once its heartbeat lapses.
import { randomBytes } from 'node:crypto';
import { cacheLayoutFor } from '../core/cache-layout.js';
import { systemErrorCode } from '../base/errors.js';
import { writeFileAtomically } from '../base/atomic-file.js';
import { ensureOwnDirectory } from '../base/own-directory.js';
import { NotASmallFile, readSmallRegularFile } from '../base/small-file.js';

const idPattern = /^[0-9a-f]{32}$/;

/** The id kept in the cache, or undefined when there is none yet (nothing is written). */
export function existingFleetInstanceId(cacheDirectory: string): string | undefined {
  try {
    const text = readSmallRegularFile(cacheLayoutFor(cacheDirectory).fleetInstanceFile, 64).trim();
    return idPattern.test(text) ? text : undefined; // anything else is replaced by fleetInstanceId
  } catch (error) {
    if (error instanceof NotASmallFile || systemErrorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** The id kept in the cache, made (and written atomically) when there is none. */
export async function fleetInstanceId(cacheDirectory: string): Promise<string> {
  const existing = existingFleetInstanceId(cacheDirectory);
  if (existing) return existing;
  const id = randomBytes(16).toString('hex');
  await ensureOwnDirectory(cacheDirectory);
  await writeFileAtomically(cacheLayoutFor(cacheDirectory).fleetInstanceFile, `${id}\n`);
  return id;
}
