// write(2) may write less than asked (a disk filling up): the rest is asked for until all is
// written or a write fails. One place for it: the history's appends and downloads both need it.
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Writes at the file's position, or at `position` when given (a delta's ranges arrive out of order). */
export async function writeWhole(handle: FileHandle, bytes: Uint8Array, position?: number): Promise<void> {
  for (let written = 0; written < bytes.length; ) {
    const at = position === undefined ? null : position + written;
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, at);
    if (bytesWritten === 0) throw new Error('no byte could be written (is the disk full?)');
    written += bytesWritten;
  }
}

/** The same, synchronously, at `position` of a descriptor (a delta's tens of thousands of small copies). */
export function writeWholeSync(fd: number, bytes: Uint8Array, position: number): void {
  for (let written = 0; written < bytes.length; ) {
    const count = writeSync(fd, bytes, written, bytes.length - written, position + written);
    if (count === 0) throw new Error('no byte could be written (is the disk full?)');
    written += count;
  }
}
