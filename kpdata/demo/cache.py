"""Files that kpdata generates once and keeps on disk (the built-in demo sets)."""
from __future__ import annotations

import os
import shutil
import tempfile


def default_cache_dir() -> str:
    """``$KPDATA_CACHE`` if set and non-empty, else ``~/.cache/kpdata``."""
    return os.environ.get("KPDATA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "kpdata")


def holds(path: str, files: dict[str, bytes]) -> bool:
    """True when ``path`` holds exactly ``files`` ({relative path with '/': bytes})."""
    for rel, data in files.items():
        fp = os.path.join(path, *rel.split("/"))
        try:
            if os.path.getsize(fp) != len(data):
                return False
            with open(fp, "rb") as f:
                if f.read() != data:
                    return False
        except OSError:
            return False
    return True


def materialize(cache_dir: str | None, name: str, files: dict[str, bytes]) -> str:
    """The folder ``<cache_dir>/<name>`` holding exactly ``files``, written on first use.

    A folder that is missing a file or whose files differ (a half-deleted or older set) is
    replaced. The files go to a temporary sibling that is renamed into place, so a concurrent
    process sees either no folder or a complete one; if another process wins the rename, ours is
    discarded. ``cache_dir``: default :func:`default_cache_dir`."""
    cache_dir = cache_dir or default_cache_dir()
    target = os.path.join(cache_dir, name)
    if holds(target, files):
        return target
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=cache_dir)
    try:
        for rel, data in files.items():
            fp = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(fp), exist_ok=True)
            with open(fp, "wb") as f:
                f.write(data)
        for _ in range(3):
            if os.path.isdir(target) and not holds(target, files):
                # Move the stale set out of the way (atomically), then delete it.
                stale = tempfile.mkdtemp(prefix=f".{name}.stale-", dir=cache_dir)
                try:
                    os.rename(target, os.path.join(stale, "old"))
                except OSError:
                    pass  # moved or replaced meanwhile by another process; re-checked below
                shutil.rmtree(stale, ignore_errors=True)
            try:
                os.rename(tmp, target)
                return target
            except OSError:
                # The target exists again: another process finished first.
                if holds(target, files):
                    return target
        raise OSError(f"could not install {name} at {target}")
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


STAMP = ".kpdata-stamp"


def materialize_stamped(cache_dir: str | None, name: str, make_files, stamp: str) -> str:
    """:func:`materialize` for a large set: ``<cache_dir>/<name>`` is taken as it is when its
    ``.kpdata-stamp`` file holds ``stamp`` (say, a hash of the generating code and its arguments),
    so the files are only generated (``make_files()`` -> {relative path: bytes}) when it does not."""
    target = os.path.join(cache_dir or default_cache_dir(), name)
    try:
        with open(os.path.join(target, STAMP), encoding="utf-8") as f:
            if f.read() == stamp:
                return target
    except OSError:
        pass
    return materialize(cache_dir, name, {**make_files(), STAMP: stamp.encode("utf-8")})
