"""Reading a dataset folder's small files into a check, and the folder-wide file checks:
temporaries left behind (a write that never completed), files no pipeline writes there
(a stray copy of a shard under another name, ...) and the bytes of an LMDB folder."""
from __future__ import annotations

import json
import os

from schemas.dataset import names
from schemas.dataset.names import TEMP_NAME
from schemas.dataset.validation.report import Check, Report

__all__ = ["read_json", "read_lines", "dir_bytes", "check_temporaries", "check_temporaries_in", "METADATA_ENTRIES",
           "check_unexpected", "folder_entries"]

# What every pipeline may write at the top of its output folder besides its records.
METADATA_ENTRIES = frozenset((
    names.KPDATA_INFO, names.DATASET_INFO, names.FEATURES, names.STATS, names.PREVIEW,
    names.ERRORS_DIR, names.JOURNAL_DIR,
    "viewpoints.png"))  # schemas.dataset.previews.VIEWPOINT_PLOT: render_shapenet's rendered viewpoints


def read_json(path: str, check: Check, rel: str):
    """The parsed JSON file, or None after a defect on ``rel`` (missing, does not parse)."""
    if not os.path.isfile(path):
        check.defect(rel, "missing")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        check.defect(rel, f"does not parse as JSON ({e})")
        return None


def read_lines(path: str, check: Check, rel: str) -> list[str] | None:
    """The file's lines (UTF-8), or None after a defect on ``rel`` (missing, unreadable)."""
    if not os.path.isfile(path):
        check.defect(rel, "missing")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        check.defect(rel, f"unreadable ({e})")
        return None


def dir_bytes(path: str) -> int:
    """Total bytes of the files under ``path`` (an LMDB environment, a split folder)."""
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def check_temporaries(root: str, report: Report) -> None:
    """Nothing under the folder still has a temporary name (a write that never completed)."""
    c = report.check("files")
    before = len(c.defects)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            if TEMP_NAME.search(name):
                c.defect(report.rel(os.path.join(dirpath, name)),
                         "temporary name left behind: a write that never completed (or is still running)")
        dirnames[:] = [d for d in dirnames if not TEMP_NAME.search(d)]
    if len(c.defects) == before:
        c.note("no temporary files")


def check_temporaries_in(root: str, c: Check, label: str) -> None:
    """As :func:`check_temporaries`, for a folder outside the dataset (named ``label``) into ``c``."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            if TEMP_NAME.search(name):
                c.defect(os.path.join(label, os.path.relpath(os.path.join(dirpath, name), root)),
                         "temporary name left behind: a write that never completed")
        dirnames[:] = [n for n in dirnames if not TEMP_NAME.search(n)]


def check_unexpected(root: str, report: Report, folders, expected) -> None:
    """Every entry of ``folders`` (relative to ``root``; '' = the folder itself) that is neither
    in ``expected`` (relative paths: the listed shards, the layout's own files), nor
    :data:`METADATA_ENTRIES` at the top, nor a temporary (reported by :func:`check_temporaries`)
    is a defect: no kpdata pipeline writes it, so it is a copy, a leftover or someone else's file,
    and a reader globbing the folder may take it for data. Lists every one."""
    c = report.check("files")
    expected = {os.path.normpath(os.path.relpath(e, root) if os.path.isabs(e) else e) for e in expected}
    for folder, name, rel in folder_entries(root, folders):
        if rel in expected or (not folder and name in METADATA_ENTRIES):
            continue
        what = "folder" if os.path.isdir(os.path.join(root, rel)) else "file"
        c.defect(os.fsencode(rel).decode("utf-8", "backslashreplace"),
                 f"unexpected {what}: not written by this pipeline (a copy or a leftover?); remove it")


def folder_entries(root: str, folders):
    """(folder, name, relative path) of every entry of ``folders`` (relative to ``root``; '' = the
    folder itself; missing ones skipped), sorted by name, temporaries left out (reported by
    :func:`check_temporaries`)."""
    for folder in folders:
        d = os.path.join(root, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not TEMP_NAME.search(name):
                yield folder, name, os.path.normpath(os.path.join(folder, name))
