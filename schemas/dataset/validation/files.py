"""Reading a dataset folder's small files into a check, and the folder-wide file checks:
temporaries left behind (a write that never completed) and the bytes of an LMDB folder."""
from __future__ import annotations

import json
import os

from schemas.dataset.names import TEMP_NAME
from schemas.dataset.validation.report import Check, Report

__all__ = ["read_json", "read_lines", "dir_bytes", "check_temporaries", "check_temporaries_in"]


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
