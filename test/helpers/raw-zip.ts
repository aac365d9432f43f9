// Writes zip archives byte by byte, for the hostile and odd archives no zip library will make
// (absolute names, "..", backslashes, outward symlinks, overlapping entries, sizes that lie,
// UTF-8 names without the UTF-8 flag, DOS volume labels).
import { crc32, deflateRawSync } from 'node:zlib';

export interface RawEntry {
  name: string | Buffer;
  data?: Buffer | string;
  /** Full Unix mode including the file type bits, e.g. 0o100755 or 0o120777 for a symlink. */
  mode?: number;
  /** Lie about the CRC-32 in the headers, to make a corrupt archive. */
  badCrc?: boolean;
  /** Deflate the data (method 8) instead of storing it. */
  deflate?: boolean;
  /** Lie about the uncompressed size in the headers. */
  declaredSize?: number;
  /** Lie about the compressed size in the central directory (a size past the end of the archive). */
  declaredCompressedSize?: number;
  /** Write no data of its own: the central record points at the local header of entry N (overlap). */
  pointAt?: number;
  /** Set the UTF-8 name flag (default true). */
  utf8Flag?: boolean;
  /** A DOS entry with these MS-DOS attributes (e.g. 0x08, a volume label) instead of a Unix one. */
  dosAttributes?: number;
}

export const symlinkEntry = (name: string, target: string): RawEntry => ({ name, data: target, mode: 0o120777 });

export function rawZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  const localOffsets: number[] = [];
  const describedAs: Array<{ crc: number; compressed: number; size: number; method: number }> = [];
  let offset = 0;
  entries.forEach((entry, index) => {
    const name = Buffer.isBuffer(entry.name) ? entry.name : Buffer.from(entry.name, 'utf8');
    const plain = Buffer.isBuffer(entry.data) ? entry.data : Buffer.from(entry.data ?? '', 'utf8');
    const flags = entry.utf8Flag === false ? 0 : 0x800;
    const data = entry.deflate ? deflateRawSync(plain) : plain;
    const method = entry.deflate ? 8 : 0;
    const crc = (crc32(plain) ^ (entry.badCrc ? 0xffff : 0)) >>> 0;
    const size = entry.declaredSize ?? plain.length;
    const isDirectory = (Buffer.isBuffer(entry.name) ? entry.name.toString('latin1') : entry.name).endsWith('/');
    const mode = entry.mode ?? (isDirectory ? 0o040755 : 0o100644);

    let localOffset = offset;
    let described = { crc, compressed: data.length, size, method };
    if (entry.pointAt !== undefined) {
      localOffset = localOffsets[entry.pointAt] as number;
      described = describedAs[entry.pointAt] as typeof described;
    } else {
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(20, 4); // version needed
      local.writeUInt16LE(flags, 6);
      local.writeUInt16LE(method, 8);
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(data.length, 18);
      local.writeUInt32LE(size, 22);
      local.writeUInt16LE(name.length, 26);
      locals.push(local, name, data);
      offset += local.length + name.length + data.length;
    }
    localOffsets[index] = localOffset;
    describedAs[index] = described;

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(entry.dosAttributes === undefined ? (3 << 8) | 20 : 20, 4); // made by Unix, or DOS
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(described.method, 10);
    central.writeUInt32LE(described.crc, 16);
    central.writeUInt32LE(entry.declaredCompressedSize ?? described.compressed, 20);
    central.writeUInt32LE(described.size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(entry.dosAttributes ?? (mode << 16) >>> 0, 38);
    central.writeUInt32LE(localOffset, 42);
    centrals.push(central, name);
  });
  const centralDirectory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralDirectory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, centralDirectory, end]);
}
