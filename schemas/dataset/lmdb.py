"""LMDB environments, opened in one place: read-only for readers, aside-and-rename for writers.

kpdata's LMDBs are plain key -> value stores (``subdir`` layout: a folder holding ``data.mdb``):
keys are UTF-8 record keys, kept sorted by LMDB; values are serialized Examples or Caffe Datums.
"""
from __future__ import annotations

import functools

import lmdb

__all__ = ["Error", "MAP_SIZE", "open_read", "open_write", "shared_reader", "items", "values"]

Error = lmdb.Error
MAP_SIZE = 1 << 40  # address space only: the file grows with the data


def open_read(path: str, max_readers: int = 126) -> lmdb.Environment:
    """A read-only environment (no lock file: the folder may be read-only or shared)."""
    return lmdb.open(path, readonly=True, lock=False, subdir=True, max_readers=max_readers)


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
