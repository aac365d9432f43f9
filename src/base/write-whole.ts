// write(2) may write less than asked (a disk filling up): the rest is asked for until all is
// written or a write fails. One place for it: the history's appends and downloads both need it.
import type { FileHandle } from 'node:fs/promises';

export async function writeWhole(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
    if (bytesWritten === 0) throw new Error('no byte could be written (is the disk full?)');
    written += bytesWritten;
  }
}
