"""The TFRecord container, without TensorFlow.

Each record: ``uint64 length`` (little endian), ``uint32 masked_crc32c(length)``, ``data``,
``uint32 masked_crc32c(data)``; the mask is ``((crc >> 15) | (crc << 17)) + 0xa282ead8``
(mod 2^32). Readers check both checksums and name the file and offset of any damage.
"""
from __future__ import annotations

import struct

import google_crc32c

_MASK_DELTA = 0xA282EAD8


class CorruptRecordError(ValueError):
    pass


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record's bytes as stored in a TFRecord file."""
    length = struct.pack("<Q", len(data))
    return b"".join((length, struct.pack("<I", masked_crc32c(length)), data,
                     struct.pack("<I", masked_crc32c(data))))


def write_records(f, records) -> int:
    """Write each bytes object of ``records`` to the binary file object ``f``; returns bytes written."""
    n = 0
    for data in records:
        chunk = frame(data)
        f.write(chunk)
        n += len(chunk)
    return n


def read_records(f, name: str = "<stream>"):
    """Yield the records of a TFRecord stream, checking every checksum."""
    offset = 0
    while True:
        header = f.read(12)
        if not header:
            return
        if len(header) < 12:
            raise CorruptRecordError(f"{name}: truncated record header at byte {offset}")
        length, crc = struct.unpack("<QI", header)
        if masked_crc32c(header[:8]) != crc:
            raise CorruptRecordError(f"{name}: bad length checksum at byte {offset}")
        data = f.read(length)
        footer = f.read(4)
        if len(data) < length or len(footer) < 4:
            raise CorruptRecordError(f"{name}: truncated record at byte {offset}")
        if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise CorruptRecordError(f"{name}: bad data checksum in the record at byte {offset}")
        offset += 16 + length
        yield data
