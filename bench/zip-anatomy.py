#!/usr/bin/env python3
"""What a ranged zip delta would have to fetch (docs/zip-delta-design.md).

    python3 bench/zip-anatomy.py NEW.zip            the central directory's and the local headers' share
    python3 bench/zip-anatomy.py OLD.zip NEW.zip    and, against the previous archive: entries unchanged
                                                    (same name, CRC-32 and sizes) whose local header differs
"""
import struct
import sys
import zipfile


def anatomy(path):
    data = open(path, 'rb').read()
    end = data.rfind(b'PK\x05\x06')
    directory_size = struct.unpack('<I', data[end + 12:end + 16])[0]
    entries = {}
    for info in zipfile.ZipFile(path).infolist():
        offset = info.header_offset
        name_length, extra_length = struct.unpack('<HH', data[offset + 26:offset + 30])
        header_end = offset + 30 + name_length + extra_length
        entries[info.filename] = {'crc': info.CRC, 'sizes': (info.compress_size, info.file_size), 'header': data[offset:header_end]}
    return len(data), directory_size, entries


size, directory, entries = anatomy(sys.argv[-1])
headers = sum(len(entry['header']) for entry in entries.values())
print(f'{sys.argv[-1]}: {size} B, {len(entries)} entries, mean {size // max(1, len(entries))} B; '
      f'central directory {directory} B ({100 * directory / size:.1f}%), local headers {headers} B ({100 * headers / size:.1f}%)')
if len(sys.argv) == 3:
    _, _, before = anatomy(sys.argv[1])
    same = [name for name, entry in entries.items() if name in before and before[name]['crc'] == entry['crc'] and before[name]['sizes'] == entry['sizes']]
    differing = [name for name in same if before[name]['header'] != entries[name]['header']]
    changed = [name for name in entries if name not in same]
    changed_bytes = sum(len(entries[name]['header']) + entries[name]['sizes'][0] for name in changed)
    print(f'against {sys.argv[1]}: {len(same)} entries unchanged, of which {len(differing)} with another local header; '
          f'{len(changed)} changed or added: {changed_bytes} B ({100 * changed_bytes / size:.1f}%)')
