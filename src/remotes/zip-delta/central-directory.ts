// A zip's central directory as a delta needs it: per entry, what identifies its compressed bytes
// (name, CRC-32, sizes, method, flags) and where its local header is. Read by yauzl, which handles
// zip64 and the end record's quirks, through a reader that may fetch what is not yet on disk.
import yauzl from 'yauzl';

export interface CentralEntry {
  /** The name's raw bytes as latin1 (entries are matched byte for byte, whatever the encoding). */
  key: string;
  nameLength: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  method: number;
  flags: number;
  localHeaderOffset: number;
}

export interface CentralDirectory {
  entries: CentralEntry[];
  /** Where the central directory starts: every entry's bytes lie before it. */
  offset: number;
}

/** Thrown when the archive has more entries than max-entries (the extractor says it in full later). */
export class TooManyEntries extends Error {}

/**
 * Reads every entry; the reader is closed after. `beforeEntries` is told the entry count and the
 * directory's offset first (from the end record), and may throw to read no further.
 */
export async function readCentralDirectory(
  reader: yauzl.RandomAccessReader,
  size: number,
  maxEntries: number,
  beforeEntries?: (entryCount: number, offset: number) => void,
): Promise<CentralDirectory> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(reader, size, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: false,
      strictFileNames: false,
    });
  } catch (error) {
    reader.close(() => undefined);
    throw error;
  }
  // yauzl keeps the central directory's offset only as its cursor's start.
  const offset = zip.readEntryCursor as unknown as number;
  try {
    if (typeof offset !== 'number' || offset > size) throw new Error('no central directory offset');
    if (zip.entryCount > maxEntries) throw new TooManyEntries(`${zip.entryCount} entries exceed max-entries = ${maxEntries}`);
    beforeEntries?.(zip.entryCount, offset);
    const entries: CentralEntry[] = [];
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName as unknown as Buffer;
        entries.push({
          key: name.toString('latin1'),
          nameLength: name.length,
          crc32: entry.crc32,
          compressedSize: entry.compressedSize,
          uncompressedSize: entry.uncompressedSize,
          method: entry.compressionMethod,
          flags: entry.generalPurposeBitFlag,
          localHeaderOffset: entry.relativeOffsetOfLocalHeader,
        });
        zip.readEntry();
      });
      zip.once('end', resolve);
      zip.once('error', reject);
      zip.readEntry();
    });
    return { entries, offset };
  } finally {
    zip.close();
  }
}
