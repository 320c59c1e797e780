"""The dead-letter files: ``errors/failures.jsonl`` and any other ``errors/*.jsonl`` (DESIGN §4)."""
from __future__ import annotations

import json
import os

from schemas.dataset.names import DROPPED_FILE, ERRORS_DIR, FAILURES_FILE, TEMP_NAME
from schemas.dataset.validation.files import read_lines
from schemas.dataset.validation.report import Report

__all__ = ["DEAD_LETTER_KEYS", "check_errors"]

DEAD_LETTER_KEYS = ("key", "stage", "error", "message", "path")


def check_errors(root: str, report: Report, stats: dict | None, dropped_count: int | None = None) -> None:
    """errors/failures.jsonl exists; every errors/*.jsonl line is a JSON object with string key,
    stage, error, message, path; failures.jsonl has stats.failures.total lines; dropped.jsonl
    (Click-Here) has ``dropped_count`` lines when that is given."""
    c = report.check("errors")
    d = os.path.join(root, ERRORS_DIR)
    if not os.path.isfile(os.path.join(d, FAILURES_FILE)):
        c.defect(f"{ERRORS_DIR}/{FAILURES_FILE}", "missing (every run writes it, empty when nothing failed)")
    counts = {}
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        rel = f"{ERRORS_DIR}/{name}"
        if not name.endswith(".jsonl") or TEMP_NAME.search(name):
            continue
        lines = read_lines(os.path.join(d, name), c, rel) or []
        counts[name] = len(lines)
        for i, line in enumerate(lines, 1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                c.defect(rel, f"line {i} is not JSON ({e})")
                continue
            lacking = [k for k in DEAD_LETTER_KEYS if not (isinstance(obj, dict) and isinstance(obj.get(k), str))]
            if lacking:
                c.defect(rel, f"line {i} lacks a string {', '.join(lacking)}")
    if isinstance(stats, dict) and FAILURES_FILE in counts:
        total = (stats.get("failures") or {}).get("total")
        if total is not None and total != counts[FAILURES_FILE]:
            c.defect(f"{ERRORS_DIR}/{FAILURES_FILE}", f"has {counts[FAILURES_FILE]} lines, stats.json says "
                                                      f"{total} failures")
    if dropped_count is not None and DROPPED_FILE in counts and counts[DROPPED_FILE] != dropped_count:
        c.defect(f"{ERRORS_DIR}/{DROPPED_FILE}", f"has {counts[DROPPED_FILE]} lines, stats.json counts "
                                                 f"{dropped_count} dropped views")
    c.note(", ".join(f"{n}: {k} line(s)" for n, k in counts.items()) or "no files")
