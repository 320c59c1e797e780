"""The metadata files beside the shards (DESIGN §4): ``kpdata_info.json`` (with our schema
description under ``features``) and ``stats.json`` parse, have their fields and agree with each
other and with the schema; where the shards are TFRecord in TFDS's file template, TFDS's
``dataset_info.json`` and ``features.json`` (:mod:`schemas.dataset.tfds`) are present and agree
with the shards and the schema."""
from __future__ import annotations

import json
import os

from schemas.dataset import tfds
from schemas.dataset.names import DATASET_INFO, FEATURES, KPDATA_INFO, STATS
from schemas.features import Schema
from schemas.dataset.validation.files import read_json
from schemas.dataset.validation.report import Report

__all__ = ["INFO_KEYS", "check_metadata", "check_features_match", "check_tfds"]

INFO_KEYS = ("name", "record", "splits", "config", "seed", "command", "code_version")


def check_metadata(root: str, report: Report, needs_features: bool = True,
                   counts_records: bool = True) -> tuple[dict | None, dict | None]:
    """kpdata_info.json (with our schema under ``features`` when ``needs_features``) and
    stats.json parse and have their fields; the split totals are the sums of their shards;
    stats.json's records_written is the listed example count (when ``counts_records``). Returns
    (info, stats); info is None when unreadable, else normalised (``config`` and ``splits``
    objects, an int ``seed``)."""
    c = report.check("metadata")
    info = read_json(os.path.join(root, KPDATA_INFO), c, KPDATA_INFO)
    stats = read_json(os.path.join(root, STATS), c, STATS)
    if needs_features and isinstance(info, dict):
        feats = info.get("features")
        if not (isinstance(feats, dict) and "name" in feats and isinstance(feats.get("fields"), list)):
            c.defect(KPDATA_INFO, "'features' is not a schema description (needs name and fields)")
    if info is None:
        return None, stats
    if not isinstance(info, dict):
        c.defect(KPDATA_INFO, "is not a JSON object")
        return None, stats
    for k in INFO_KEYS:
        if k not in info:
            c.defect(KPDATA_INFO, f"has no {k!r}")
    if not isinstance(info.get("config"), dict):
        info["config"] = {}
    if not isinstance(info.get("seed"), int):
        info["seed"] = 0
    if not isinstance(info.get("splits"), dict):
        c.defect(KPDATA_INFO, "'splits' is not an object")
        info["splits"] = {}
    for name, s in list(info["splits"].items()):
        shards = s.get("shards") if isinstance(s, dict) else None
        if not isinstance(shards, list) or not all(
                isinstance(d, dict) and isinstance(d.get("file"), str) and _count(d.get("examples"))
                and _count(d.get("bytes")) for d in shards):
            c.defect(KPDATA_INFO, f"split {name!r}: shards must be a list of {{file, examples >= 0, bytes >= 0}}")
            info["splits"][name] = {"shards": []}
            continue
        for total, field in (("num_examples", "examples"), ("num_bytes", "bytes")):
            want = sum(int(d[field]) for d in shards)
            if s.get(total) != want:
                c.defect(KPDATA_INFO, f"split {name!r}: {total} is {s.get(total)}, its shards sum to {want}")
    if stats is not None:
        for k in ("counts", "failures", "failure_rate"):
            if k not in stats:
                c.defect(STATS, f"has no {k!r}")
        written = (stats.get("counts") or {}).get("records_written")
        total = sum(int(s.get("num_examples", 0)) for s in (info.get("splits") or {}).values() if isinstance(s, dict))
        if written is not None and counts_records and written != total:
            c.defect(STATS, f"counts.records_written is {written}, kpdata_info.json lists {total} examples")
    c.note(f"{KPDATA_INFO}, {STATS} read")
    return info, stats


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_features_match(root: str, report: Report, schema) -> None:
    """kpdata_info.json's ``features`` (when present) is ``schema.describe()``; a difference is a
    metadata defect."""
    info = _load(os.path.join(root, KPDATA_INFO))
    feats = info.get("features") if isinstance(info, dict) else None
    if not isinstance(feats, dict):
        return
    want = json.loads(json.dumps(schema.describe()))
    if feats != want:
        got = {d.get("name") for d in feats.get("fields", []) if isinstance(d, dict)}
        diff = sorted(got ^ {d["name"] for d in want["fields"]})
        report.check("metadata").defect(KPDATA_INFO, f"'features' differs from the {schema.name} schema's description"
                                        + (f" (fields {diff})" if diff else " (field declarations)"))


def check_tfds(root: str, report: Report, schema, info: dict) -> None:
    """Where ``info``'s splits are TFRecord shards in TFDS's file template (and ``schema`` a record
    Schema): TFDS's dataset_info.json names the dataset, its version and file format, lists the
    same splits with each shard's example count (``shardLengths``, as kpdata_info.json, whose
    counts the shard check verifies) and the bytes of the files on disk (``numBytes``), in TFDS's
    template; features.json is :func:`schemas.dataset.tfds.features_json` of the schema."""
    name, splits = info.get("name"), info.get("splits") or {}
    if not (isinstance(schema, Schema) and isinstance(name, str) and tfds.tfds_compatible(name, splits)):
        return
    c = report.check("metadata")
    got = _load(os.path.join(root, DATASET_INFO))
    feats = _load(os.path.join(root, FEATURES))
    for fname, value in ((DATASET_INFO, got), (FEATURES, feats)):
        if value is None:
            c.defect(fname, "missing or not JSON; TFDS (tfds.builder_from_directory) cannot open the folder")
    if feats is not None and feats != json.loads(json.dumps(tfds.features_json(schema))):
        c.defect(FEATURES, f"is not TFDS's FeaturesDict of the {schema.name} schema")
    if not isinstance(got, dict):
        return
    for key, want in (("name", name), ("version", schema.version), ("fileFormat", tfds.FILE_FORMAT)):
        if got.get(key) != want:
            c.defect(DATASET_INFO, f"{key} is {got.get(key)!r}, expected {want!r}")
    listed = {s.get("name"): s for s in got.get("splits") or [] if isinstance(s, dict)}
    if sorted(listed) != sorted(splits):
        c.defect(DATASET_INFO, f"splits {sorted(map(str, listed))}, kpdata_info.json has {sorted(splits)}")
    for split, s in sorted(splits.items()):
        t = listed.get(split)
        if t is None:
            continue
        lengths = [str(sh.get("examples")) for sh in s["shards"]]
        if [str(v) for v in t.get("shardLengths") or []] != lengths:
            c.defect(DATASET_INFO, f"split {split!r}: shardLengths {t.get('shardLengths')}, the shards hold {lengths}")
        on_disk = sum(os.path.getsize(os.path.join(root, sh["file"])) for sh in s["shards"]
                      if os.path.isfile(os.path.join(root, sh["file"])))
        if str(t.get("numBytes")) != str(on_disk):
            c.defect(DATASET_INFO, f"split {split!r}: numBytes {t.get('numBytes')}, its shard files have {on_disk}")
        if t.get("filepathTemplate") != tfds.FILEPATH_TEMPLATE:
            c.defect(DATASET_INFO, f"split {split!r}: filepathTemplate {t.get('filepathTemplate')!r}, the shards "
                                   f"are named {tfds.FILEPATH_TEMPLATE!r}")
    c.note(f"TFDS {DATASET_INFO}, {FEATURES} read")


def _load(path: str):
    """The JSON at ``path``, or None when missing or unreadable (read_json reports those)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
