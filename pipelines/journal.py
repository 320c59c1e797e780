"""The run's journal in ``<output_dir>/.kpdata/``: what makes a run resumable, and a folder safe to reuse.

::

    .kpdata/run.json             the command and the configuration that decide the output
    .kpdata/lock                 held (flock) by the driver of the run writing the folder
    .kpdata/units/<unit>.json    a committed work unit: its part or file, dead letters, counters
    .kpdata/parts/<unit>.tfrecord  a committed unit's records (+ .index: key, offset, length)
    .kpdata/shards/<shard>.json  a committed shard: file, examples, bytes, sha256
    .kpdata/progress/<unit>      records done by the unit being made (for the progress line)

A unit or shard is committed when its record exists and its file has the recorded size and
sha256 (files are written under a temporary name, renamed, then recorded). A rerun of the same
command finds what is committed and makes only the rest; the dataset ends byte-identical to an
uninterrupted run's. :class:`RunFolder` takes the lock, refuses a folder holding another
configuration or foreign files (``--overwrite`` starts fresh), and removes temporaries of a killed
run.

Paths may be local (or a shared mount: NFS) or any filesystem Beam knows (``gs://``); the lock
works on local and NFS folders only.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import shutil
import urllib.parse

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.dataset import names

LOG = logging.getLogger("kpdata.journal")
RUN_FILE = "run.json"
LOCK_FILE = "lock"
UNITS, PARTS, SHARDS, PROGRESS = "units", "parts", "shards", "progress"
PART_EXT, INDEX_EXT = ".tfrecord", ".index"
# Output fields that do not change what is written: a rerun may change them.
NOT_OUTPUT = ("output_dir", "preview", "max_failure_rate")


class FolderError(Exception):
    """The output folder cannot be used by this run (printed as ``error: ...``, exit status 2)."""


# ------------------------------------------------------------------------------ files, local or not


def remote(path: str) -> bool:
    return "://" in path


def open_write(path: str):
    if remote(path):
        return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return open(path, "wb")


def open_read(path: str):
    if remote(path):
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return open(path, "rb")


def exists(path: str) -> bool:
    return FileSystems.exists(path) if remote(path) else os.path.exists(path)


def rename(src: str, dst: str) -> None:
    """Move ``src`` (a file or a local folder) onto ``dst``, replacing it."""
    if remote(src):
        if FileSystems.exists(dst):
            FileSystems.delete([dst])
        FileSystems.rename([src], [dst])
        return
    if os.path.isdir(dst) and not os.path.islink(dst):
        shutil.rmtree(dst)
    os.replace(src, dst)


def remove(path: str) -> None:
    """Delete a file or folder if present."""
    if remote(path):
        if FileSystems.exists(path):
            FileSystems.delete([path])
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def listdir(folder: str) -> list[str]:
    """Names in ``folder`` (none when it does not exist)."""
    if remote(folder):
        try:
            found = FileSystems.match([folder.rstrip("/") + "/*"])[0].metadata_list
        except Exception:  # noqa: BLE001 - a missing folder matches nothing
            return []
        return sorted(os.path.basename(m.path) for m in found)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def write_bytes(path: str, data: bytes) -> None:
    """``data`` to ``path`` atomically (a temporary name, then a rename)."""
    tmp = names.tmp_name(path)
    with open_write(tmp) as f:
        f.write(data)
    rename(tmp, path)


def read_json(path: str):
    with open_read(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _plain(obj):
    """JSON for numpy values in records (counters, summaries)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def write_json(path: str, obj) -> None:
    write_bytes(path, (json.dumps(obj, sort_keys=True, default=_plain) + "\n").encode("utf-8"))


def digest(path: str) -> tuple[int, str]:
    """(bytes, sha256) of a file, or of a local folder's files (names and contents, in name order)."""
    h = hashlib.sha256()
    if not remote(path) and os.path.isdir(path):
        size = 0
        for root, dirs, files in sorted(os.walk(path)):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(root, name)
                h.update(os.path.relpath(p, path).encode("utf-8") + b"\0")
                size += _hash_file(p, h)
        return size, h.hexdigest()
    return _hash_file(path, h), h.hexdigest()


def _hash_file(path: str, h) -> int:
    n = 0
    with open_read(path) as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
            n += len(chunk)
    return n


def intact(path: str, record: dict) -> bool:
    """The file or folder at ``path`` has the ``bytes`` and ``sha256`` that ``record`` holds."""
    if not exists(path):
        return False
    try:
        return digest(path) == (record["bytes"], record["sha256"])
    except OSError:
        return False


# ------------------------------------------------------------------------------ journal paths


def unit_id(key: str) -> str:
    """A unit key as one file name (reversible: ``/`` and other unsafe characters %-escaped)."""
    return urllib.parse.quote(key, safe="")


def journal_dir(output_dir: str) -> str:
    return os.path.join(output_dir, names.JOURNAL_DIR)


def unit_record(output_dir: str, uid: str) -> str:
    return os.path.join(journal_dir(output_dir), UNITS, uid + ".json")


def part_path(output_dir: str, uid: str) -> str:
    return os.path.join(journal_dir(output_dir), PARTS, uid + PART_EXT)


def index_path(part: str) -> str:
    return part + INDEX_EXT


def shard_record(output_dir: str, sid: str) -> str:
    return os.path.join(journal_dir(output_dir), SHARDS, sid + ".json")


def progress_path(output_dir: str, uid: str) -> str:
    return os.path.join(journal_dir(output_dir), PROGRESS, uid)


def read_record(path: str) -> dict | None:
    """A unit or shard record, or None when it is missing or unreadable (not committed)."""
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------ the folder


def fingerprint(command: str, config) -> dict:
    """What decides a run's output: the command and the configuration without :data:`NOT_OUTPUT`."""
    def strip(d):
        return {k: (strip(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in NOT_OUTPUT}
    return json.loads(json.dumps({"command": command, "config": strip(dataclasses.asdict(config))},
                                 sort_keys=True, default=_plain))


def _differences(old, new, prefix="") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{prefix}{k}." if prefix or k != "config" else "")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {json.dumps(old)} -> {json.dumps(new)}"]


def is_dataset(path: str) -> bool:
    """``path`` is a folder a kpdata run wrote (it has a journal, a kpdata_info.json or a dataset_info.json)."""
    return any(exists(os.path.join(path, n)) for n in (names.JOURNAL_DIR, names.KPDATA_INFO, names.DATASET_INFO))


class RunFolder:
    """The output folder of one run, as a context manager: takes the lock, checks the folder
    against the run's :func:`fingerprint` (``overwrite``: delete a previous dataset instead of
    refusing), removes temporaries a killed run left, records the configuration; releases the lock
    at exit, after removing the temporaries of this run when it ends with an exception.
    :class:`FolderError` for a folder in use, holding another configuration or foreign files."""

    def __init__(self, output_dir: str, print_: dict, overwrite: bool = False, command_line: str = ""):
        self.output_dir, self.fingerprint, self.overwrite = output_dir, print_, overwrite
        self.command_line = command_line
        self._lock = None

    def __enter__(self) -> RunFolder:
        out, jdir = self.output_dir, journal_dir(self.output_dir)
        if not remote(out):
            os.makedirs(jdir, exist_ok=True)
            self._take_lock(os.path.join(jdir, LOCK_FILE))
        try:
            self._check()
            self._clean()
            write_json(os.path.join(jdir, RUN_FILE), self.fingerprint)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if exc and exc[0] is not None and self._lock is not None:
            try:  # a failed run leaves no temporaries (on a full disk they would keep it full);
                self._clean()  # what it committed stays, for a rerun to resume from
            except OSError as e:
                LOG.warning("could not remove the temporaries of the failed run in %s: %s", self.output_dir, e)
        if self._lock is not None:
            import fcntl
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _take_lock(self, path: str) -> None:
        import fcntl
        f = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise FolderError(f"{self.output_dir} is in use by another run ({holder}); wait for it to end or "
                              f"choose another --output_dir") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} since {datetime.datetime.now():%Y-%m-%d %H:%M:%S}: {self.command_line}\n")
        f.flush()
        self._lock = f

    def _check(self) -> None:
        out = self.output_dir
        previous = read_record(os.path.join(journal_dir(out), RUN_FILE))
        ours = [n for n in self.entries() if n != names.JOURNAL_DIR]
        if previous is None and not ours:
            return
        if previous == self.fingerprint:
            return
        if previous is not None:
            what = "a dataset made with another configuration (" + "; ".join(
                _differences(previous, self.fingerprint)[:6]) + ")"
        elif exists(os.path.join(out, names.KPDATA_INFO)) or exists(os.path.join(out, names.DATASET_INFO)):
            what = "a dataset without a run journal (an earlier kpdata version or an unknown configuration)"
        else:
            what = f"files that are not a kpdata dataset ({', '.join(ours[:5])}{', ...' if len(ours) > 5 else ''})"
            if self.overwrite:
                raise FolderError(f"{out} holds {what}; --overwrite deletes only kpdata datasets: choose an empty "
                                  f"or new --output_dir")
            raise FolderError(f"{out} holds {what}; choose an empty or new --output_dir")
        if not self.overwrite:
            raise FolderError(f"{out} holds {what}; rerun with --overwrite to delete it and start fresh, or choose "
                              f"another --output_dir")
        LOG.warning("--overwrite: deleting the dataset in %s (%s)", out, what)
        for name in ours:
            remove(os.path.join(out, name))
        for name in listdir(journal_dir(out)):
            if name != LOCK_FILE:
                remove(os.path.join(journal_dir(out), name))

    def entries(self) -> list[str]:
        """The folder's entries, without other kpdata datasets nested in it (a gen_tfrecords output
        inside a render_stereo folder belongs to its own run)."""
        out = self.output_dir
        return [n for n in listdir(out)
                if n == names.JOURNAL_DIR or not (not remote(out) and os.path.isdir(os.path.join(out, n))
                                                  and is_dataset(os.path.join(out, n)))]

    def _clean(self) -> None:
        """Remove what a killed run left: temporaries (any depth, not inside nested datasets) and
        progress files."""
        out = self.output_dir
        remove(os.path.join(journal_dir(out), PROGRESS))
        if remote(out):
            return
        for root, dirs, files in os.walk(out):
            for name in [n for n in dirs + files if names.TEMP_NAME.search(n)]:
                LOG.info("removing %s (left by an interrupted run)", os.path.join(root, name))
                remove(os.path.join(root, name))
            dirs[:] = [d for d in dirs if not names.TEMP_NAME.search(d) and
                       (root == out and d == names.JOURNAL_DIR or not is_dataset(os.path.join(root, d)))]

    def finish(self) -> None:
        """After a complete run: the parts and progress files go; the journal's records stay (a rerun
        of the same command then has nothing to do)."""
        for name in (PARTS, PROGRESS):
            remove(os.path.join(journal_dir(self.output_dir), name))
