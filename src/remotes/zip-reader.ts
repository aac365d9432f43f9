// Serves yauzl's reads of one archive. yauzl reads every central-directory record with its own
// small asynchronous reads (two per entry), each a thread-pool round trip: for 20,000 entries
// that was most of the extraction time (measured with strace: futex dominated). Here the
// central directory is read into memory in one read, on the first request for it, and yauzl's
// small reads are served from there; file data is still read from the file as a stream.
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';

/** The largest central directory kept in memory (about 1.5 million entries' worth). */
const largestCachedTail = 128 * 1024 * 1024;

export class ArchiveReader extends yauzl.RandomAccessReader {
  readonly path: string;
  readonly fd: number;
  readonly size: number;
  private tail: Buffer = Buffer.alloc(0);
  private tailStart: number;
  private cachingTail = true;

  constructor(path: string) {
    super();
    this.path = path;
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
    this.tailStart = this.size;
  }

  /**
   * After the central directory has been read, new ranges are no longer cached and the cached one
   * is let go (3.7 MB for 28,000 entries, held to the end of the extraction before).
   */
  stopCaching(): void {
    this.cachingTail = false;
    this.tail = Buffer.alloc(0);
    this.tailStart = this.size;
  }

  /** Fills `buffer` from `position` synchronously; throws at an unexpected end of file. */
  readFully(buffer: Buffer, position: number, length = buffer.length): void {
    for (let filled = 0; filled < length; ) {
      const count = readSync(this.fd, buffer, filled, length - filled, position + filled);
      if (count === 0) throw new Error('unexpected end of archive');
      filled += count;
    }
  }

  private cached(start: number, end: number): Buffer | undefined {
    if (start < this.tailStart && this.cachingTail && this.size - start <= largestCachedTail) {
      const tail = Buffer.allocUnsafe(this.size - start);
      this.readFully(tail, start);
      this.tail = tail;
      this.tailStart = start;
    }
    if (start >= this.tailStart && end <= this.size) return this.tail.subarray(start - this.tailStart, end - this.tailStart);
    return undefined;
  }

  /** The bytes [start, end) of the archive as a stream with 1 MiB chunks, on a descriptor of its own. */
  createRawStream(start: number, end: number): Readable {
    // Its own descriptor: a ReadStream closes the one it reads when destroyed, whatever autoClose says.
    return createReadStream(this.path, { start, end: end - 1, highWaterMark: 1 << 20 });
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const inMemory = this.cached(start, end);
    if (inMemory) return Readable.from([inMemory], { objectMode: false });
    return this.createRawStream(start, end);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (error: Error | null) => void): void {
    try {
      const inMemory = this.cached(position, position + length);
      if (inMemory) inMemory.copy(buffer, offset);
      else this.readFully(buffer.subarray(offset), position, length);
      queueMicrotask(() => callback(null));
    } catch (error) {
      queueMicrotask(() => callback(error as Error));
    }
  }

  override close(callback: (error: Error | null) => void): void {
    closeSync(this.fd);
    queueMicrotask(() => callback(null));
  }
}
