// What every range source checks of an answer, whatever the protocol: a Content-Range that is
// exactly one of the ranges asked for, of an archive of the size the first answer gave, and a
// body of exactly that length. Anything else abandons the delta (the archive is then downloaded
// whole): a server that answers other bytes than asked must never be spliced in.
import type { Readable } from 'node:stream';
import { DeltaAbandoned, type ByteRange } from './delta-plan.js';

/** `bytes START-END/TOTAL` as [start, end) and total; undefined when it is not that. */
export function parseContentRange(value: string | undefined): (ByteRange & { total: number }) | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value?.trim() ?? '');
  if (!match) return undefined;
  const [start, last, total] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (!Number.isSafeInteger(total) || start > last || last >= total) return undefined;
  return { start, end: last + 1, total };
}

/** The asked range a Content-Range names exactly, or DeltaAbandoned. */
export function askedRange(contentRange: string | undefined, asked: ReadonlyMap<number, ByteRange>, size: number): ByteRange {
  const answered = parseContentRange(contentRange);
  const range = answered && asked.get(answered.start);
  if (!answered || !range || answered.end !== range.end || answered.total !== size) {
    throw new DeltaAbandoned(`the server answered a range request with ${contentRange ? `"${contentRange}"` : 'no Content-Range'}, not one of the ranges asked for`);
  }
  return range;
}

/** Writes a body that must be exactly `range`'s bytes, as they arrive. */
export async function writeRangeBody(body: Readable | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, range: ByteRange, write: (position: number, bytes: Buffer) => Promise<void>): Promise<void> {
  let position = range.start;
  for await (const chunk of body) {
    const bytes = Buffer.from(chunk);
    if (position + bytes.length > range.end) throw new DeltaAbandoned(`the server sent more than the ${range.end - range.start} bytes asked for at ${range.start}`);
    await write(position, bytes);
    position += bytes.length;
  }
  if (position !== range.end) throw new DeltaAbandoned(`the server sent ${position - range.start} of the ${range.end - range.start} bytes asked for at ${range.start}`);
}

/** Lets a body go, read or not: destroyed, with any late error it emits ignored (an unheard one would end the process). */
export function letGo(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
