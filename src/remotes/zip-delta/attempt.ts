// What HTTP and S3 share around a delta: whether one may be tried (delta = yes, a kept archive,
// no cut-short download to resume instead), the first answer's end of the archive, and the
// attempt itself, which either rebuilds the archive or says why not and leaves the caller to
// download it whole.
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { CheckContext } from '../../core/remote-contract.js';
import type { ZipSettings } from '../../core/settings.js';
import { counted } from '../../base/counted.js';
import { DeployError, messageOf } from '../../base/errors.js';
import { downloadLimitsFor, tooLarge } from '../zip-release.js';
import { dropDeltaBase, findDeltaBase, keepAsDeltaBase, removeUnusedDeltaBases, type DeltaBase } from './delta-base.js';
import { DeltaAbandoned } from './delta-plan.js';
import { letGo, parseContentRange, writeRangeBody } from './ranges-answered.js';
import type { DeltaResult } from './rebuild.js';

/**
 * What the first request asks for, and what yauzl reads first: the zip64 locator (20 bytes), the
 * end record (22) and the longest comment it may carry.
 */
export const endOfArchiveBytes = 20 + 22 + 0xffff;

/** A base unused for this long belongs to a remote no longer configured. */
const unusedBaseAfterMs = 30 * 24 * 3600 * 1000;

export interface DeltaChance {
  /** The archive to rebuild from, when a delta may be tried. */
  base: DeltaBase | undefined;
  /** Keeps a good download for the next delta (undefined with delta = no). */
  keepForNextDelta: ((path: string, sha256: string) => Promise<void>) | undefined;
}

/** `identity` names the remote (the partial download's hash of its address). */
export async function deltaChance(context: CheckContext<ZipSettings>, identity: string, resuming: boolean): Promise<DeltaChance> {
  if (!context.settings.delta) {
    await dropDeltaBase(context.cache, identity);
    return { base: undefined, keepForNextDelta: undefined };
  }
  await removeUnusedDeltaBases(context.cache, identity, new Date(), unusedBaseAfterMs);
  return {
    base: resuming ? undefined : await findDeltaBase(context.cache, identity),
    keepForNextDelta: (path, sha256) => keepAsDeltaBase(context.cache, identity, path, sha256),
  };
}

/**
 * The first answer's bytes and the archive's size. Asked for the archive's end; a store that does
 * not know suffix ranges (s3rver) answers its start instead, which is kept as well (the end is then
 * asked for by the rebuild). More than asked, or no Content-Range, is DeltaAbandoned; a size over
 * max-download-size fails the check.
 */
export async function receiveEndOfArchive(context: CheckContext<ZipSettings>, body: Readable, contentRange: string | undefined, display: string): Promise<{ size: number; first: { start: number; bytes: Buffer } }> {
  try {
    const answered = parseContentRange(contentRange);
    if (!answered || answered.end - answered.start > endOfArchiveBytes + 1) {
      throw new DeltaAbandoned(`the server answered the request for the archive's end with ${contentRange ? `"${contentRange}"` : 'no Content-Range'}`);
    }
    const limits = downloadLimitsFor(context, display);
    if (answered.total > limits.maxBytes) throw tooLarge(limits, answered.total);
    const bytes = Buffer.alloc(answered.end - answered.start);
    await writeRangeBody(body, answered, async (position, chunk) => void chunk.copy(bytes, position - answered.start));
    return { size: answered.total, first: { start: answered.start, bytes } };
  } finally {
    letGo(body);
  }
}

/**
 * Runs `rebuild` (which writes `destination`), or says why a delta is not used and removes what
 * was written: undefined then, and the caller downloads the archive whole. A stop, a timeout and
 * the agent's own refusals (an archive over max-download-size) still fail the check.
 */
export async function attemptDelta(
  context: CheckContext<ZipSettings>,
  attempt: { destination: string; display: string; signal: AbortSignal },
  rebuild: () => Promise<DeltaResult>,
): Promise<DeltaResult | undefined> {
  try {
    const result = await rebuild();
    context.log.info(
      `rebuilt ${attempt.display} from a delta: ${counted(result.fetchedBytes, 'byte')} of ${result.bytes} fetched in ${counted(result.requests + 1, 'request')}, ${result.reusedBytes} reused from the previous archive`,
    );
    return result;
  } catch (error) {
    await rm(attempt.destination, { force: true });
    if (attempt.signal.aborted || error instanceof DeployError) throw error;
    const reason = error instanceof DeltaAbandoned ? error.message : `the delta failed: ${messageOf(error)}`;
    context.log.info(`${attempt.display}: no delta (${reason}): downloading it whole`);
    return undefined;
  }
}
