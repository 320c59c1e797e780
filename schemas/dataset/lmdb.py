"""LMDB environments, opened in one place: read-only for readers, aside-and-rename for writers.

kpdata's LMDBs are plain key -> value stores (``subdir`` layout: a folder holding ``data.mdb``):
keys are UTF-8 record keys, kept sorted by LMDB; values are serialized Examples or Caffe Datums.
"""
from __future__ import annotations

import functools
import os

import lmdb

__all__ = ["Error", "TruncatedError", "DATA_FILE", "MAP_SIZE", "open_read", "open_write", "shared_reader", "items", "values"]

Error = lmdb.Error
MAP_SIZE = 1 << 40  # address space only: the file grows with the data
DATA_FILE = "data.mdb"  # the data file of a subdir environment (schemas.dataset.names.LMDB_DATA)


class TruncatedError(lmdb.Error):
    """The environment's data file is shorter than its own meta page says (a copy or write that
    was cut short). Reading it would touch pages past the end of the file: the process would die of
    SIGBUS, so such an environment is refused before any record is read."""


def open_read(path: str, max_readers: int = 126) -> lmdb.Environment:
    """A read-only environment (no lock file: the folder may be read-only or shared).

    Raises :class:`Error` naming the folder when it is not an environment, and
    :class:`TruncatedError` when ``data.mdb`` is shorter than the pages its newest meta page
    counts (``(last_pgno + 1) * page size`` bytes)."""
    data = os.path.join(path, DATA_FILE)
    try:
        size = os.path.getsize(data)
    except OSError as e:
        raise Error(f"{path}: no readable {DATA_FILE} ({e.strerror})") from None
    if size == 0:
        raise TruncatedError(f"{data}: empty file (0 bytes)")
    env = lmdb.open(path, readonly=True, lock=False, subdir=True, max_readers=max_readers)
    try:
        need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    except lmdb.Error:
        env.close()
        raise
    if size < need:
        env.close()
        raise TruncatedError(f"{data}: truncated: {size} bytes, its meta page counts {need} bytes of pages")
    return env


def open_write(path: str) -> lmdb.Environment:
    """A new environment for one writer (no lock, no per-commit sync: call ``env.sync(True)`` at the end)."""
    return lmdb.open(path, map_size=MAP_SIZE, subdir=True, lock=False, sync=False, metasync=False)


@functools.cache
def shared_reader(path: str) -> lmdb.Environment:
    """One read-only environment per path and process, kept open (LMDB refuses to open an
    environment twice in one process, which successive epochs of a reader would do)."""
    return open_read(path, max_readers=512)


def items(path: str):
    """Yield ``(key bytes, value bytes)`` in key order; the environment is closed at the end."""
    env = open_read(path)
    try:
        with env.begin() as txn:
            for key, value in txn.cursor():
                yield bytes(key), bytes(value)
    finally:
        env.close()


def values(path: str):
    """Yield the values in key order."""
    for _, value in items(path):
        yield value
