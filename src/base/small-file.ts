// Files the operator names for the agent to read whole (the config file, a webhook-secret file)
// are read only when they are regular files of a bounded size: `/dev/zero`, a FIFO or a huge
// file named by mistake must give a clear error, not hang the agent or fill its memory.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

export class NotASmallFile extends Error {}

/**
 * The file's text; throws NotASmallFile (with the reason) for a too large file, or a non-regular
 * one unless `regularOnly` is false (then `-c /dev/null` still means "no settings", while
 * /dev/zero is too large and an empty FIFO reads as empty).
 */
export function readSmallRegularFile(path: string, maxBytes: number, { regularOnly = true } = {}): string {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = fstatSync(fd);
    if (regularOnly && !info.isFile()) throw new NotASmallFile('it is not a regular file');
    if (info.size > maxBytes) throw new NotASmallFile(`it is larger than ${maxBytes} bytes (${info.size})`);
    // Read at most one byte past the limit: a file that grows while it is read is refused too.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (let read = 1; read > 0 && length < buffer.length; length += read) read = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > maxBytes) throw new NotASmallFile(`it is larger than ${maxBytes} bytes`);
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
