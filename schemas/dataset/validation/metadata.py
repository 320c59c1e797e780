"""The metadata files beside the shards (DESIGN §4): ``dataset_info.json``, ``stats.json`` and
``features.json`` parse, have their fields and agree with each other and with the schema."""
from __future__ import annotations

import json
import os

from schemas.dataset.names import DATASET_INFO, FEATURES, STATS
from schemas.dataset.validation.files import read_json
from schemas.dataset.validation.report import Report

__all__ = ["INFO_KEYS", "check_metadata", "check_features_match"]

INFO_KEYS = ("name", "record", "splits", "config", "seed", "command", "code_version")


def check_metadata(root: str, report: Report, needs_features: bool = True,
                   counts_records: bool = True) -> tuple[dict | None, dict | None]:
    """dataset_info.json, features.json (when ``needs_features``) and stats.json parse and have
    their fields; the split totals are the sums of their shards; stats.json's records_written is
    the listed example count (when ``counts_records``). Returns (info, stats); info is None when
    unreadable, else normalised (``config`` and ``splits`` objects, an int ``seed``)."""
    c = report.check("metadata")
    info = read_json(os.path.join(root, DATASET_INFO), c, DATASET_INFO)
    stats = read_json(os.path.join(root, STATS), c, STATS)
    if needs_features:
        feats = read_json(os.path.join(root, FEATURES), c, FEATURES)
        if feats is not None and not (isinstance(feats, dict) and "name" in feats and isinstance(feats.get("fields"), list)):
            c.defect(FEATURES, "not a schema description (needs name and fields)")
    if info is None:
        return None, stats
    if not isinstance(info, dict):
        c.defect(DATASET_INFO, "is not a JSON object")
        return None, stats
    for k in INFO_KEYS:
        if k not in info:
            c.defect(DATASET_INFO, f"has no {k!r}")
    if not isinstance(info.get("config"), dict):
        info["config"] = {}
    if not isinstance(info.get("seed"), int):
        info["seed"] = 0
    if not isinstance(info.get("splits"), dict):
        c.defect(DATASET_INFO, "'splits' is not an object")
        info["splits"] = {}
    for name, s in list(info["splits"].items()):
        shards = s.get("shards") if isinstance(s, dict) else None
        if not isinstance(shards, list) or not all(
                isinstance(d, dict) and isinstance(d.get("file"), str) and _count(d.get("examples"))
                and _count(d.get("bytes")) for d in shards):
            c.defect(DATASET_INFO, f"split {name!r}: shards must be a list of {{file, examples >= 0, bytes >= 0}}")
            info["splits"][name] = {"shards": []}
            continue
        for total, field in (("num_examples", "examples"), ("num_bytes", "bytes")):
            want = sum(int(d[field]) for d in shards)
            if s.get(total) != want:
                c.defect(DATASET_INFO, f"split {name!r}: {total} is {s.get(total)}, its shards sum to {want}")
    if stats is not None:
        for k in ("counts", "failures", "failure_rate"):
            if k not in stats:
                c.defect(STATS, f"has no {k!r}")
        written = (stats.get("counts") or {}).get("records_written")
        total = sum(int(s.get("num_examples", 0)) for s in (info.get("splits") or {}).values() if isinstance(s, dict))
        if written is not None and counts_records and written != total:
            c.defect(STATS, f"counts.records_written is {written}, dataset_info.json lists {total} examples")
    c.note(f"{DATASET_INFO}, {STATS}" + (f", {FEATURES}" if needs_features else "") + " read")
    return info, stats


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_features_match(root: str, report: Report, schema) -> None:
    """features.json (when it parses) is ``schema.describe()``; a difference is a metadata defect."""
    path = os.path.join(root, FEATURES)
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as f:
            feats = json.load(f)
    except (OSError, ValueError):
        return
    want = json.loads(json.dumps(schema.describe()))
    if feats != want:
        got = {d.get("name") for d in feats.get("fields", []) if isinstance(d, dict)} if isinstance(feats, dict) else set()
        diff = sorted(got ^ {d["name"] for d in want["fields"]})
        report.check("metadata").defect(FEATURES, f"differs from the {schema.name} schema's description"
                                        + (f" (fields {diff})" if diff else " (field declarations)"))
