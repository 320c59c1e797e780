"""Walking the records of one shard, checking its framing: a TFRecord file's length and data CRCs
(:mod:`schemas.tfrecord`), an LMDB environment's entries (:mod:`schemas.dataset.lmdb`).

Both walks take ``full``, the number of records to hand out for a full check (None: all); the
other records are only counted, so a sampled run still frames and counts every record.
"""
from __future__ import annotations

import math
import struct

from schemas import tfrecord
from schemas.dataset import lmdb
from schemas.dataset.validation.report import Check

__all__ = ["sample_counts", "walk_tfrecord", "walk_lmdb"]


def sample_counts(total_per_shard: list[int], max_records: int | None) -> list[int]:
    """Records to check in full per shard of a split: all, or ``max_records`` spread over the
    shards (the first records of each)."""
    if max_records is None:
        return list(total_per_shard)
    per = math.ceil(max_records / max(1, len(total_per_shard)))
    left, out = max_records, []
    for n in total_per_shard:
        k = min(n, per, left)
        out.append(k)
        left -= k
    return out


def walk_tfrecord(path: str, full: int | None, check: Check, rel: str):
    """Yield ``(index, data)`` for each record of a TFRecord file, checking its framing: every
    length CRC, and for the first ``full`` records (None = all) the data CRC; later records are
    skipped by their length (``data`` None), a record with a bad data CRC is yielded as ``b""``
    (counted, not decoded). Damage becomes a defect on ``rel``; a truncated or unreadable length
    ends the walk. Returns the number of records framed (via StopIteration.value)."""
    n = 0
    offset = 0
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return n
            if len(header) < 12:
                check.defect(rel, f"truncated record header at byte {offset} (after {n} records)")
                return n
            length, crc = struct.unpack("<QI", header)
            if tfrecord.masked_crc32c(header[:8]) != crc:
                check.defect(rel, f"bad length checksum at byte {offset} (record {n}); the rest of the file "
                                  f"cannot be framed")
                return n
            if full is None or n < full:
                data = f.read(length)
                footer = f.read(4)
                if len(data) < length or len(footer) < 4:
                    check.defect(rel, f"truncated record {n} at byte {offset} (length {length}, "
                                      f"{len(data)} bytes left)")
                    return n
                if tfrecord.masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                    check.defect(rel, f"bad data checksum in record {n} at byte {offset}")
                    yield n, b""
                else:
                    yield n, data
            else:
                f.seek(length, 1)
                footer = f.read(4)
                if len(footer) < 4:
                    check.defect(rel, f"truncated record {n} at byte {offset}")
                    return n
                yield n, None
            offset += 16 + length
            n += 1


def walk_lmdb(path: str, full: int | None, check: Check, rel: str):
    """Yield ``(index, (key, value))`` for the first ``full`` entries (None = all) in key order,
    then ``(index, None)`` for each other entry (counted by the environment's statistics). An
    environment that does not open, or a key that is not UTF-8, is a defect on ``rel``."""
    try:
        env = lmdb.open_read(path)
    except lmdb.Error as e:
        check.defect(rel, f"not a readable LMDB environment ({e})")
        return
    try:
        entries = env.stat()["entries"]
        with env.begin() as txn:
            i = 0
            for key, value in txn.cursor():
                if full is not None and i >= full:
                    break
                try:
                    k = key.decode("utf-8")
                except UnicodeDecodeError:
                    check.defect(rel, f"LMDB key {key!r} is not UTF-8")
                    k = repr(key)
                yield i, (k, bytes(value))
                i += 1
        for j in range(i, entries):
            yield j, None
    finally:
        env.close()
