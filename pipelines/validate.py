"""Check a dataset a kpdata pipeline produced; exit 1 on any defect.

    python -m pipelines.validate [DIR] [--max_records N] [--json] [--hpatches DIR]

DIR (default ``kpdata_out``) is any output folder: ``render_shapenet`` (view, clickhere in all four
layouts, keypointnet), ``gen_tfrecords``, ``render_stereo``, ``gen_homography_pairs``, or an
HPatches-layout folder. The kind is read from ``dataset_info.json`` (``record`` / ``layout``).

Checks: the metadata files parse and agree with each other and the schema; every file
dataset_info lists exists with its example count and bytes, no stray or temporary (never renamed)
shard is left; TFRecord framing and CRCs; every record decodes with its schema (fields, kinds,
shapes, shared dimensions, finite floats); keys unique, sorted within a shard, of the documented
format, in the shard and split their key and the seed put them in; cheap per-record invariants
(:mod:`schemas.dataset.checks`); the layout's own files (KeypointNet's lists and projection, KeyPose's
pbtxt, Click-Here's per-field LMDBs); the dead-letter files. Exit 0 clean, 1 on any defect, 2 on a
usage error (no such folder, not a kpdata dataset).

The folder is only read, never written. Local folders only.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import struct
import sys

import numpy as np

from kpdata import keypointnet, keypose

from schemas.dataset import checks as record_checks
from kpdata.errors import InputError
from kpdata.seeding import bucket, split_of
from schemas import caffe, example_proto, tfrecord
from schemas import clickhere as chs
from schemas.features import PNGImage, SchemaError, Tensor, Text
from schemas.keypointnet import KEYPOINTNET_PAIR, KEYPOINTNET_PAIR_CORE
from schemas.keypose import KEYPOSE
from schemas.kp2d import KP2D_PAIR
from schemas.view import VIEW

from schemas.dataset.names import (DATASET_INFO, DROPPED_FILE, ERRORS_DIR, FEATURES, STATS,  # noqa: E402
                                   TEMP_NAME)
from schemas.dataset.names import FAILURES_FILE as ERRORS_FILE  # noqa: E402

EXIT_OK, EXIT_DEFECTS, EXIT_USAGE = 0, 1, 2
DEAD_LETTER_KEYS = ("key", "stage", "error", "message", "path")
KEYPOINTNET_SPLITS = ("train", "dev", "test")  # pipelines/keypointnet.py SPLIT_NAMES
SHOW_DEFECTS = 50  # defects printed per check in the text report (--json lists all)


class UsageError(Exception):
    """Not a folder, or not a kpdata dataset (exit 2)."""


# ----------------------------------------------------------------------------------- the report


@dataclasses.dataclass
class Defect:
    check: str
    file: str
    message: str
    key: str | None = None

    def as_dict(self) -> dict:
        return {"check": self.check, "file": self.file, "key": self.key, "message": self.message}

    def __str__(self):
        where = self.file + (f" [{self.key}]" if self.key else "")
        return f"{where}: {self.message}"


@dataclasses.dataclass
class Check:
    name: str
    notes: list = dataclasses.field(default_factory=list)
    defects: list = dataclasses.field(default_factory=list)
    skipped: bool = False

    def defect(self, file: str, message: str, key: str | None = None) -> None:
        self.defects.append(Defect(self.name, file, message, key))

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def status(self) -> str:
        return "FAIL" if self.defects else ("skip" if self.skipped else "ok")


class Report:
    def __init__(self, root: str):
        self.root = root
        self.kind = "?"
        self.checks: dict[str, Check] = {}

    def check(self, name: str) -> Check:
        if name not in self.checks:
            self.checks[name] = Check(name)
        return self.checks[name]

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root) if not os.path.relpath(path, self.root).startswith("..") else path

    @property
    def defects(self) -> list[Defect]:
        return [d for c in self.checks.values() for d in c.defects]

    def as_dict(self) -> dict:
        return {"dir": self.root, "kind": self.kind, "ok": not self.defects,
                "checks": [{"name": c.name, "status": c.status, "notes": c.notes, "defects": len(c.defects)}
                           for c in self.checks.values()],
                "defects": [d.as_dict() for d in self.defects]}

    def text(self) -> str:
        lines = [f"== validate {self.root} ({self.kind})"]
        for c in self.checks.values():
            lines.append(f"   {c.status:<5} {c.name:<12} {'; '.join(c.notes)}"
                         + (f"  [{len(c.defects)} defect(s)]" if c.defects else ""))
        defects = self.defects
        if defects:
            lines.append(f"   DEFECTS {len(defects)}:")
            for c in self.checks.values():
                for d in c.defects[:SHOW_DEFECTS]:
                    lines.append(f"   - {c.name}: {d}")
                if len(c.defects) > SHOW_DEFECTS:
                    lines.append(f"   - {c.name}: ... and {len(c.defects) - SHOW_DEFECTS} more (see --json)")
            lines.append("   exit 1")
        else:
            lines.append("   no defects")
        return "\n".join(lines)


# --------------------------------------------------------------------------------- small helpers


def _read_json(path: str, check: Check, rel: str):
    if not os.path.isfile(path):
        check.defect(rel, "missing")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        check.defect(rel, f"does not parse as JSON ({e})")
        return None


def _read_lines(path: str, check: Check, rel: str) -> list[str] | None:
    if not os.path.isfile(path):
        check.defect(rel, "missing")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        check.defect(rel, f"unreadable ({e})")
        return None


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def _sample_counts(total_per_shard: list[int], max_records: int | None) -> list[int]:
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


# ----------------------------------------------------------------------------- TFRecord framing


def walk_tfrecord(path: str, full: int | None, check: Check, rel: str):
    """Yield ``(index, data)`` for each record of a TFRecord file, checking its framing: every
    length CRC, and for the first ``full`` records (None = all) the data CRC; later records are
    skipped by their length (``data`` None). Damage becomes a defect; a truncated or unreadable
    length ends the walk. Returns the number of records framed (via StopIteration.value)."""
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
                    data = None
                    yield n, b""  # counted, not decoded
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


# ------------------------------------------------------------------------------ schema decoding


_KIND_ONEOF = {"bytes": "bytes_list", "int64": "int64_list", "float": "float_list"}


def decode_strict(schema, data: bytes, optional=()) -> tuple[dict, list[str]]:
    """Decode serialized Example ``data`` with ``schema``, checking what ``Schema.decode`` does not:
    no missing or unexpected features (``optional`` names may be absent), each stored as its
    kind, value counts and shapes as declared, decoded PNG sizes, finite floats, shared dimensions.
    Returns (decoded fields, problems)."""
    try:
        ex = example_proto.parse_example(data)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        return {}, [f"not a tf.train.Example ({type(e).__name__}: {e})"]
    feats = ex.features.feature
    names = {f.name for f in schema.fields}
    missing = [f.name for f in schema.fields if f.name not in feats and f.name not in optional]
    extra = sorted(set(feats) - names)
    problems = []
    if missing:
        problems.append(f"missing features {missing}")
    if extra:
        problems.append(f"unexpected features {extra}")
    out = {}
    for f in schema.fields:
        if f.name not in feats:
            continue
        feat = feats[f.name]
        want = _KIND_ONEOF[f.kind]
        kind = feat.WhichOneof("kind")
        if kind is not None and kind != want:
            problems.append(f"{f.name}: stored as {kind}, the schema says {want}")
            continue
        vals = list(getattr(feat, want).value)
        p = _count_problem(f, len(vals))
        if p:
            problems.append(p)
            continue
        try:
            v = f.decode(vals)
        except (SchemaError, ValueError) as e:
            problems.append(f"{f.name}: does not decode ({e})")
            continue
        p = _shape_problem(f, v)
        if p:
            problems.append(p)
            continue
        if f.kind == "float" and not np.all(np.isfinite(np.asarray(v, dtype=np.float64))):
            problems.append(f"{f.name}: non-finite values")
            continue
        out[f.name] = v
    if not problems:
        try:  # shared dimensions (K, N, H, W...) agree
            _check_dims(schema, out)
        except SchemaError as e:
            problems.append(str(e))
    return out, problems


def _count_problem(f, n: int) -> str | None:
    if isinstance(f, PNGImage) or not isinstance(f, (Tensor, Text)):
        return None if n == 1 else f"{f.name}: {n} values, expected 1 (an encoded image / bytes)"
    if f.shape == ():
        return None if n == 1 else f"{f.name}: {n} values, expected a scalar"
    fixed = int(np.prod([s for s in f.shape if s is not None]))
    if None not in f.shape:
        return None if n == fixed else f"{f.name}: {n} values, expected {fixed} (shape {tuple(f.shape)})"
    if n % (fixed * f.stride):
        return f"{f.name}: {n} values, not a multiple of {fixed * f.stride}"
    return None


def _shape_problem(f, v) -> str | None:
    if isinstance(f, Text) or not isinstance(f, (Tensor, PNGImage)) or f.shape == ():
        return None
    arr = np.asarray(v)
    if len(arr.shape) != len(f.shape) or any(s is not None and s != a for s, a in zip(f.shape, arr.shape)):
        return f"{f.name}: shape {arr.shape}, expected {tuple('?' if s is None else s for s in f.shape)}"
    return None


def _check_dims(schema, rec: dict) -> None:
    seen: dict = {}
    for f in schema.fields:
        if f.name not in rec or not f.dims:
            continue
        for dim, n in f.lengths(rec[f.name]).items():
            if dim in seen and seen[dim][0] != n:
                raise SchemaError(f"{f.name} has {dim}={n} but {seen[dim][1]} has {dim}={seen[dim][0]}")
            seen.setdefault(dim, (n, f.name))


# -------------------------------------------------------------------------------- record kinds


class RecordKind:
    """How to check the records of one dataset kind. ``check_record`` returns the record's key
    (None when it has none) and reports problems on ``checks``."""

    schema = None

    def __init__(self, info: dict, report: Report):
        self.info, self.report = info, report
        self.config = info.get("config") or {}

    def decode(self, data: bytes):
        return decode_strict(self.schema, data)

    def key_of(self, rec: dict) -> str | None:
        return rec.get("key")

    def key_problem(self, key: str, split: str, shard_index: int, num_shards: int, lmdb: bool, file: str) -> str | None:
        return None

    def invariants(self, rec: dict, split: str) -> list[str]:
        return []

    def placement_problem(self, key, what, group, splits, split, shard_index, num_shards, lmdb) -> str | None:
        """``key`` of ``group`` (a model, a photo) in the split the seed gives the group and, for
        TFRecords, in the shard its key hashes to."""
        want = split_of(int(self.info.get("seed", 0)), splits, group)
        if want != split:
            return f"{what} {group} belongs in split {want!r} (seed, --splits), found in {split!r}"
        if not lmdb and bucket(key, num_shards) != shard_index:
            return f"key hashes to shard {bucket(key, num_shards)} of {num_shards}, found in shard {shard_index}"
        return None

    def finish(self) -> None:
        pass


def _config_splits(cfg: dict):
    return [tuple(s) for s in cfg.get("splits") or [["train", 1.0]]]


class ViewKind(RecordKind):
    schema = VIEW

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        m = record_checks.VIEW_KEY.match(key)
        if not m:
            return f"key {key!r} is not <synset>/<model_id>/v<index:06d>"
        return self.placement_problem(key, "model", f"{m['synset']}/{m['model_id']}", _config_splits(self.config),
                                      split, shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        out = record_checks.check_view(rec, float(self.config.get("visibility_tolerance", 0.01)))
        m = record_checks.VIEW_KEY.match(rec["key"])
        if m and (rec["synset"], rec["model_id"]) != (m["synset"], m["model_id"]):
            out.append(f"synset / model_id {rec['synset']}/{rec['model_id']} differ from the key's")
        if int(rec["seed"]) != int(self.info.get("seed", rec["seed"])):
            out.append(f"seed {rec['seed']} differs from the dataset's {self.info.get('seed')}")
        size = self.config.get("image_size")
        if size and rec["image/encoded"].shape[:2] != (size[1], size[0]):
            out.append(f"image is {rec['image/encoded'].shape[1]}x{rec['image/encoded'].shape[0]}, the dataset's "
                       f"--image_size is {size[0]}x{size[1]}")
        return out


class KP2DKind(RecordKind):
    schema = KP2D_PAIR

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        m = record_checks.KP2D_KEY.match(key)
        if not m:
            return f"key {key!r} is not <image path>/p<index:04d>"
        return self.placement_problem(key, "photo", m["image_path"], _config_splits(self.config),
                                      split, shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        out = record_checks.check_kp2d_pair(rec, self.config.get("image_size"))
        if int(rec["seed"]) != int(self.info.get("seed", rec["seed"])):
            out.append(f"seed {rec['seed']} differs from the dataset's {self.info.get('seed')}")
        return out


class KeypointNetKind(RecordKind):
    def __init__(self, info, report):
        super().__init__(info, report)
        self.schema = KEYPOINTNET_PAIR if self.config.get("extras", True) else KEYPOINTNET_PAIR_CORE
        intr = info.get("intrinsics")
        self.intrinsics = (intr["fx"], intr["fy"], intr["cx"], intr["cy"]) if intr else None
        self.file_models: dict = {}

    def key_of(self, rec):
        return rec.get("key")

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        m = record_checks.PAIR_KEY.match(key)
        if not m:
            return f"key {key!r} is not <synset>/<model_id>/p<index:06d>"
        if os.path.basename(file) != f"{m['synset']}_{m['model_id']}.tfrecord":
            return f"a pair of model {m['synset']}/{m['model_id']} in another model's record file"
        return None

    def invariants(self, rec, split):
        out = record_checks.check_keypointnet_pair(rec, self.config.get("image_size"), self.intrinsics)
        if "key" in rec:
            m = record_checks.PAIR_KEY.match(rec["key"])
            if m and (rec["synset"], rec["model_id"]) != (m["synset"], m["model_id"]):
                out.append(f"synset / model_id {rec['synset']}/{rec['model_id']} differ from the key's")
            if int(rec["seed"]) != int(self.info.get("seed", rec["seed"])):
                out.append(f"seed {rec['seed']} differs from the dataset's {self.info.get('seed')}")
        return out


class ClickHereViewKind(RecordKind):
    """Compact clickhere records (one per view)."""

    schema = chs.CLICKHERE_VIEW

    def __init__(self, info, report):
        super().__init__(info, report)
        self.render = self.config.get("render") or {}
        self.flip_splits = set(self.config.get("flip_splits") or [])
        self.num_classes = _num_classes(self.config)
        self.instances: dict = {}  # split -> instance count (all records checked in full)
        self.instance_keys: dict = {}

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        m = record_checks.VIEW_KEY.match(key)
        if not m:
            return f"key {key!r} is not <synset>/<model_id>/v<index:06d>"
        return self.placement_problem(key, "model", f"{m['synset']}/{m['model_id']}", _config_splits(self.render),
                                      split, shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        out = record_checks.check_clickhere_view(rec, split in self.flip_splits, self.num_classes)
        keys = list(rec["instances/key"]) + list(rec["instances/flip_key"])
        self.instances[split] = self.instances.get(split, 0) + len(keys)
        for k in keys:
            if k in self.instance_keys:
                out.append(f"instance key {k} also in view {self.instance_keys[k]}")
            self.instance_keys[k] = rec["key"]
        return out


class ClickHereInstanceKind(RecordKind):
    """Full clickhere instances as TFRecords."""

    schema = chs.CLICKHERE_INSTANCE

    def __init__(self, info, report):
        super().__init__(info, report)
        self.render = self.config.get("render") or {}
        self.flip_splits = set(self.config.get("flip_splits") or [])
        self.num_classes = _num_classes(self.config)

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        return _instance_key_problem(key, split, self.render, self.flip_splits, int(self.info.get("seed", 0)),
                                     shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        inst = dict(rec)
        inst["image"] = inst.pop("image/encoded")
        out = record_checks.check_clickhere_instance(inst, self.num_classes)
        m = record_checks.CLICKHERE_KEY.match(rec["key"])
        vm = record_checks.VIEW_KEY.match(rec["view_key"])
        if m and (not vm or (vm["synset"], vm["model_id"], vm["index"]) != (m["synset"], m["model_id"], m["index"])):
            out.append(f"view_key {rec['view_key']!r} is not the view the key names")
        return out


def _instance_key_problem(key, split, render_cfg, flip_splits, seed, shard_index, num_shards, lmdb):
    m = record_checks.CLICKHERE_KEY.match(key)
    if not m:
        return f"key {key!r} is not <8 digits>_<synset>_<model>_v<i>_a_e_t_d_obj0_objc<c>_kp<k>[_r]"
    want = split_of(seed, _config_splits(render_cfg), f"{m['synset']}/{m['model_id']}")
    if want != split:
        return f"model {m['synset']}/{m['model_id']} belongs in split {want!r} (seed, --splits), found in {split!r}"
    if m["r"] and split not in flip_splits:
        return f"a flipped _r copy in split {split!r}, which --flip_splits does not flip"
    if not lmdb:
        view_key = f"{m['synset']}/{m['model_id']}/v{m['index']}"
        if bucket(view_key, num_shards) != shard_index:
            return f"its view {view_key} hashes to shard {bucket(view_key, num_shards)} of {num_shards}, " \
                   f"found in shard {shard_index}"
    return None


def _num_classes(config: dict) -> int | None:
    spec = config.get("keypoint_classes", "clickhere34")
    if spec == "clickhere34":
        from kpdata.clickhere import KeypointClassTable
        return len(KeypointClassTable.clickhere34())
    return None  # a user file: the records say


class KeyPoseKind(RecordKind):
    schema = KEYPOSE

    def __init__(self, info, report, data_params=None):
        super().__init__(info, report)
        self.dp = data_params
        try:
            s = keypose.ImageSize.parse(self.config.get("image_size", ""))
            self.size = (s.width, s.height, s.focal)
        except ValueError:
            self.size = None

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        if not record_checks.KEYPOSE_KEY.match(key):
            return f"key {key!r} is not <object>/<sequence>/<frame>"
        folder = key.rsplit("/", 1)[0]
        folders = (self.info.get("folders") or {}).get(split)
        if folders is not None and folder not in folders:
            return f"folder {folder} is not one of split {split!r}'s folders in dataset_info.json"
        return None

    def invariants(self, rec, split):
        dp = self.dp
        return record_checks.check_keypose(rec, dp.num_kp if dp else None, self.size,
                                           dp.camera.baseline if dp else None)


# ------------------------------------------------------------------------------ the common checks


def check_metadata(root: str, report: Report, needs_features=True) -> tuple[dict | None, dict | None]:
    """dataset_info.json, features.json and stats.json parse and have their fields; the split
    totals are the sums of their shards. Returns (info, stats)."""
    c = report.check("metadata")
    info = _read_json(os.path.join(root, DATASET_INFO), c, DATASET_INFO)
    stats = _read_json(os.path.join(root, STATS), c, STATS)
    if needs_features:
        feats = _read_json(os.path.join(root, FEATURES), c, FEATURES)
        if feats is not None and not (isinstance(feats, dict) and "name" in feats and isinstance(feats.get("fields"), list)):
            c.defect(FEATURES, "not a schema description (needs name and fields)")
    if info is None:
        return None, stats
    if not isinstance(info, dict):
        c.defect(DATASET_INFO, "is not a JSON object")
        return None, stats
    for k in ("name", "record", "splits", "config", "seed", "command", "code_version"):
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
        if written is not None and info.get("record") != "keypose_sequences" and written != total:
            c.defect(STATS, f"counts.records_written is {written}, dataset_info.json lists {total} examples")
    c.note(f"{DATASET_INFO}, {STATS}" + (f", {FEATURES}" if needs_features else "") + " read")
    return info, stats


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_features_match(root: str, report: Report, schema) -> None:
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


def check_errors(root: str, report: Report, stats: dict | None, dropped_count: int | None = None) -> None:
    """errors/failures.jsonl exists; every errors/*.jsonl line is a JSON object with string key,
    stage, error, message, path; failures.jsonl has stats.failures.total lines."""
    c = report.check("errors")
    d = os.path.join(root, ERRORS_DIR)
    if not os.path.isfile(os.path.join(d, ERRORS_FILE)):
        c.defect(f"{ERRORS_DIR}/{ERRORS_FILE}", "missing (every run writes it, empty when nothing failed)")
    counts = {}
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        rel = f"{ERRORS_DIR}/{name}"
        if not name.endswith(".jsonl") or TEMP_NAME.search(name):
            continue
        lines = _read_lines(os.path.join(d, name), c, rel) or []
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
    if isinstance(stats, dict) and ERRORS_FILE in counts:
        total = (stats.get("failures") or {}).get("total")
        if total is not None and total != counts[ERRORS_FILE]:
            c.defect(f"{ERRORS_DIR}/{ERRORS_FILE}", f"has {counts[ERRORS_FILE]} lines, stats.json says "
                                                    f"{total} failures")
    if dropped_count is not None and DROPPED_FILE in counts and counts[DROPPED_FILE] != dropped_count:
        c.defect(f"{ERRORS_DIR}/{DROPPED_FILE}", f"has {counts[DROPPED_FILE]} lines, stats.json counts "
                                                 f"{dropped_count} dropped views")
    c.note(", ".join(f"{n}: {k} line(s)" for n, k in counts.items()) or "no files")


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


def check_shards(root: str, report: Report, info: dict, kind: RecordKind, max_records: int | None) -> None:
    """Every listed shard: present, its bytes and example count as listed, framing / CRCs,
    records decoded and checked (the first ``max_records`` per split in full), keys unique and
    sorted within a shard. Unlisted shard files are defects."""
    files_c = report.check("files")
    has_tfrecords = any(s.get("format", "tfrecord") == "tfrecord" for s in info.get("splits", {}).values())
    frame_c = report.check("framing") if has_tfrecords else Check("framing")
    rec_c, key_c, inv_c = report.check("records"), report.check("keys"), report.check("invariants")
    seen: dict[str, str] = {}
    totals = {"shards": 0, "records": 0, "checked": 0, "bytes": 0}
    listed = set()
    for split, s in sorted(info.get("splits", {}).items()):
        shards = s.get("shards", [])
        fmt = s.get("format", "tfrecord")
        full = _sample_counts([int(d["examples"]) for d in shards], max_records)
        for index, (shard, k_full) in enumerate(zip(shards, full)):
            rel = shard["file"]
            listed.add(os.path.normpath(rel))
            path = os.path.join(root, rel)
            totals["shards"] += 1
            if fmt == "lmdb":
                if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "data.mdb")):
                    files_c.defect(rel, "listed in dataset_info.json but missing (no LMDB data.mdb)")
                    continue
                size = _dir_bytes(path)
            else:
                if not os.path.isfile(path):
                    files_c.defect(rel, "listed in dataset_info.json but missing")
                    continue
                size = os.path.getsize(path)
            totals["bytes"] += size
            if size != int(shard["bytes"]):
                files_c.defect(rel, f"{size} bytes, dataset_info.json lists {shard['bytes']}")
            records = _iter_lmdb(path, k_full, files_c, rel) if fmt == "lmdb" else walk_tfrecord(path, k_full, frame_c, rel)
            n = 0
            prev = None
            for i, data in records:
                n += 1
                if not data:
                    continue
                lmdb_key = None
                if isinstance(data, tuple):
                    lmdb_key, data = data
                totals["checked"] += 1
                rec, problems = kind.decode(data)
                key = kind.key_of(rec) if rec else None
                if key is None:
                    key = lmdb_key
                label = key or f"record {i}"
                for p in problems:
                    rec_c.defect(rel, p, label)
                if lmdb_key is not None and key is not None and lmdb_key != key:
                    key_c.defect(rel, f"LMDB key {lmdb_key!r} differs from the record's key field", label)
                if key is not None:
                    if key in seen:
                        key_c.defect(rel, f"duplicate key (also in {seen[key]})", key)
                    seen.setdefault(key, rel)
                    if prev is not None and key <= prev and lmdb_key is None:
                        key_c.defect(rel, f"not sorted: follows {prev!r}", key)
                    prev = key
                    p = kind.key_problem(key, split, index, len(shards), fmt == "lmdb", rel)
                    if p:
                        key_c.defect(rel, p, key)
                if not problems:
                    try:
                        for p in kind.invariants(rec, split):
                            inv_c.defect(rel, p, label)
                    except Exception as e:  # noqa: BLE001 - a record odd enough to break a check is a defect
                        inv_c.defect(rel, f"checking the record failed: {type(e).__name__}: {e}", label)
            totals["records"] += n
            if n != int(shard["examples"]):
                files_c.defect(rel, f"{n} records, dataset_info.json lists {shard['examples']}")
    kind.finish()
    files_c.note(f"{totals['shards']} shard(s), {totals['records']} records, {totals['bytes'] / 1e6:,.1f} MB")
    frame_c.note("length and data CRCs" + ("" if max_records is None else " (data CRCs of the checked records)"))
    rec_c.note(f"{totals['checked']} of {totals['records']} records decoded with {kind.schema.name if kind.schema else '?'}")
    key_c.note(f"{len(seen)} keys" if seen else "records carry no key")
    inv_c.note(f"{totals['checked']} records")
    report.listed = listed  # for the stray-file check


def _iter_lmdb(path: str, full: int | None, check: Check, rel: str):
    """Yield (index, (key, value)) for the first ``full`` entries (None = all), then (index, None)
    for each other entry (counted by the environment's statistics)."""
    import lmdb
    try:
        env = lmdb.open(path, readonly=True, lock=False, subdir=True)
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


def check_stray_shards(root: str, report: Report, info: dict, folders=("",)) -> None:
    """Shard-like entries (``*.tfrecord*``, ``*.lmdb``) in the shard folders that dataset_info.json
    does not list."""
    c = report.check("files")
    listed = getattr(report, "listed", set())
    for folder in folders:
        d = os.path.join(root, folder)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            rel = os.path.normpath(os.path.join(folder, name))
            if TEMP_NAME.search(name):
                continue  # reported by check_temporaries
            if (".tfrecord" in name or name.endswith(".lmdb")) and rel not in listed:
                c.defect(rel, "a shard file dataset_info.json does not list (stray)")


# ---------------------------------------------------------------------------------- the layouts


def validate_shards_dataset(root, report, info, stats, kind, max_records, shard_folders=("",)):
    check_shards(root, report, info, kind, max_records)
    check_stray_shards(root, report, info, shard_folders)
    check_temporaries(root, report)
    if kind.schema is not None:
        check_features_match(root, report, kind.schema)


def validate_keypointnet(root, report, info, stats, max_records):
    kind = KeypointNetKind(info, report)
    validate_shards_dataset(root, report, info, stats, kind, max_records)
    c = report.check("keypointnet")
    files = sorted(d["file"] for s in info["splits"].values() for d in s.get("shards", []))
    by_split = {split: [d["file"] for d in s.get("shards", [])] for split, s in info["splits"].items()}
    for split in KEYPOINTNET_SPLITS:
        lines = _read_lines(os.path.join(root, f"{split}.txt"), c, f"{split}.txt")
        if lines is None:
            continue
        want = [f[:-len(".tfrecord")] for f in by_split.get(split, [])]
        if [ln for ln in lines if ln.strip()] != want:
            c.defect(f"{split}.txt", f"lists {len(lines)} record file(s), dataset_info.json has {len(want)} in "
                                     f"split {split!r} ({', '.join(want[:3])}{'...' if len(want) > 3 else ''})")
    lines = _read_lines(os.path.join(root, "job.txt"), c, "job.txt")
    if lines is not None:
        want = [f"{n} {n.split('_', 1)[0]} {n.split('_', 1)[1]}" for n in (f[:-len('.tfrecord')] for f in files)]
        if lines != want:
            c.defect("job.txt", f"is not one '<name> <synset> <model_id>' line per record file ({len(lines)} lines, "
                                f"{len(want)} files)")
    lines = _read_lines(os.path.join(root, "projection.txt"), c, "projection.txt")
    if lines is not None:
        try:
            p = keypointnet.parse_projection("\n".join(lines))
            if p.shape != (4, 4):
                raise ValueError(f"shape {p.shape}")
            f = keypointnet.focal_ndc(float(info["config"]["fov"]))
            if abs(p[0, 0] - f) > 1e-6 * f or abs(p[1, 1] - f) > 1e-6 * f:
                c.defect("projection.txt", f"p00, p11 = {p[0, 0]:.8g}, {p[1, 1]:.8g}; --fov "
                                           f"{info['config']['fov']} needs cot(fov/2) = {f:.8g}")
        except (ValueError, KeyError, TypeError) as e:
            c.defect("projection.txt", f"is not a 4x4 matrix of single-space separated numbers ({e})")
    # Every key of a file names that file's model.
    c.note("train/dev/test.txt, job.txt, projection.txt")


def validate_keypose(root, report, info, stats, max_records):
    from kpdata.keypose import proto as kpp
    c = report.check("keypose")
    rec_dir = os.path.join(root, "tfrecords")
    dp = None
    try:
        dp = keypose.read_data_params(os.path.join(rec_dir, keypose.DATA_PARAMS))
    except InputError as e:
        c.defect(f"tfrecords/{keypose.DATA_PARAMS}", e.message)
    kind = KeyPoseKind(info, report, dp)
    if dp is not None and kind.size is not None and (dp.resx, dp.resy) != kind.size[:2]:
        c.defect(f"tfrecords/{keypose.DATA_PARAMS}", f"resx, resy = {dp.resx}, {dp.resy}; --image_size is "
                                                     f"{info['config'].get('image_size')}")
    try:
        tfset = kpp.read_text(os.path.join(rec_dir, "tfset.pbtxt"), "TfSet")
        if tfset.name != info.get("name"):
            c.defect("tfrecords/tfset.pbtxt", f"name {tfset.name!r}, dataset_info.json's name is {info.get('name')!r}")
        for split in ("train", "val"):
            want = [os.path.basename(d["file"]) for d in info["splits"].get(split, {}).get("shards", [])]
            got = list(getattr(tfset, split))
            if info["config"].get("format", "tfrecord") == "tfrecord" and got != want:
                c.defect("tfrecords/tfset.pbtxt", f"{split} lists {got[:4]}..., dataset_info.json has {want[:4]}...")
    except InputError as e:
        c.defect("tfrecords/tfset.pbtxt", e.message)
    try:
        kpp.read_text(os.path.join(root, "tfset_def.pbtxt"), "TfSet")
    except InputError as e:
        c.defect("tfset_def.pbtxt", e.message)
    if info["config"].get("format", "tfrecord") == "tfrecord":
        names = [os.path.basename(d["file"]) for split in ("train", "val")
                 for d in info["splits"].get(split, {}).get("shards", [])]
        if names != [f"{i:04d}.tfrecord" for i in range(len(names))]:
            c.defect(DATASET_INFO, "record files are not 0000.tfrecord, 0001.tfrecord, ... train first, then val")
    validate_shards_dataset(root, report, info, stats, kind, max_records, ("", "tfrecords"))
    c.note("tfset.pbtxt, data_params.pbtxt, tfset_def.pbtxt")


def validate_caffe(root, report, info, stats, max_records):
    """Click-Here's full LMDB layout: per split folder, one LMDB per field with identical key sets,
    Caffe Datum values of the documented shapes, keys.txt and views.jsonl."""
    import lmdb
    files_c, rec_c, key_c, inv_c = (report.check(n) for n in ("files", "records", "keys", "invariants"))
    cfg = info.get("config") or {}
    render = cfg.get("render") or {}
    flips = set(cfg.get("flip_splits") or [])
    n_classes = _num_classes(cfg)
    seen: dict = {}
    listed = set()
    n_checked = n_total = 0
    for split, s in sorted(info["splits"].items()):
        for shard in s.get("shards", []):
            rel = shard["file"]
            listed.add(os.path.normpath(rel))
            d = os.path.join(root, rel)
            if not os.path.isdir(d):
                files_c.defect(rel, "listed in dataset_info.json but missing")
                continue
            size = _dir_bytes(d)
            if size != int(shard["bytes"]):
                files_c.defect(rel, f"{size} bytes, dataset_info.json lists {shard['bytes']}")
            envs, keysets = {}, {}
            try:
                for field in chs.CAFFE_FIELDS:
                    p = os.path.join(d, chs.lmdb_name(field))
                    frel = f"{rel}/{chs.lmdb_name(field)}"
                    if not os.path.isfile(os.path.join(p, "data.mdb")):
                        files_c.defect(frel, "missing")
                        continue
                    try:
                        envs[field] = lmdb.open(p, readonly=True, lock=False, subdir=True)
                    except lmdb.Error as e:
                        files_c.defect(frel, f"not a readable LMDB ({e})")
                        continue
                    with envs[field].begin() as txn:
                        keysets[field] = [bytes(k) for k in txn.cursor().iternext(values=False)]
                ref_field = next(iter(keysets), None)
                ref = keysets.get(ref_field, [])
                for field, keys in keysets.items():
                    if keys != ref:
                        a, b = set(ref), set(keys)
                        only_ref, only_f = sorted(a - b)[:2], sorted(b - a)[:2]
                        key_c.defect(f"{rel}/{chs.lmdb_name(field)}",
                                     f"key set differs from {chs.lmdb_name(ref_field)}'s ({len(keys)} vs {len(ref)} keys; "
                                     f"only in {ref_field}: {[k.decode(errors='replace') for k in only_ref]}, only here: "
                                     f"{[k.decode(errors='replace') for k in only_f]})")
                keys = [k.decode("utf-8", errors="replace") for k in ref]
                n_total += len(keys)
                if len(keys) != int(shard["examples"]):
                    files_c.defect(rel, f"{len(keys)} instances, dataset_info.json lists {shard['examples']}")
                if s.get("num_instances") is not None and s["num_instances"] != len(keys):
                    files_c.defect(DATASET_INFO, f"split {split!r}: num_instances {s['num_instances']}, "
                                                 f"the LMDBs hold {len(keys)}")
                lines = _read_lines(os.path.join(d, "keys.txt"), files_c, f"{rel}/keys.txt")
                if lines is not None and lines != sorted(keys):
                    files_c.defect(f"{rel}/keys.txt", f"is not the sorted key set of the LMDBs ({len(lines)} lines, "
                                                      f"{len(keys)} keys)")
                _check_views_jsonl(d, rel, set(keys), files_c)
                for key in keys:
                    if key in seen:
                        key_c.defect(rel, f"duplicate key (also in {seen[key]})", key)
                    seen.setdefault(key, rel)
                    p = _instance_key_problem(key, split, render, flips, int(info.get("seed", 0)), 0, 1, True)
                    if p:
                        key_c.defect(rel, p, key)
                full = len(ref) if max_records is None else min(len(ref), max_records)
                if len(envs) == len(chs.CAFFE_FIELDS):
                    txns = {f: e.begin() for f, e in envs.items()}
                    for kb in ref[:full]:
                        key = kb.decode("utf-8", errors="replace")
                        n_checked += 1
                        inst, problems = _decode_datums(txns, kb, n_classes)
                        for p in problems:
                            rec_c.defect(rel, p, key)
                        if not problems:
                            inst["key"] = key
                            try:
                                problems = record_checks.check_clickhere_instance(inst, n_classes)
                            except Exception as e:  # noqa: BLE001 - see check_shards
                                problems = [f"checking the record failed: {type(e).__name__}: {e}"]
                            for p in problems:
                                inv_c.defect(rel, p, key)
                    for t in txns.values():
                        t.abort()
            finally:
                for e in envs.values():
                    e.close()
    report.listed = listed
    files_c.note(f"{len(listed)} split folder(s) x {len(chs.CAFFE_FIELDS)} LMDBs, {n_total} instances")
    rec_c.note(f"{n_checked} of {n_total} instances' Datums decoded")
    key_c.note(f"{len(seen)} keys, identical sets across the {len(chs.CAFFE_FIELDS)} LMDBs")
    inv_c.note(f"{n_checked} instances")
    # Stray LMDB split folders: directories in root that look like a split layout but are unlisted.
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        if os.path.isdir(p) and not TEMP_NAME.search(name) and name not in listed and \
                os.path.isdir(os.path.join(p, chs.lmdb_name("image"))):
            files_c.defect(name, "a split folder of LMDBs dataset_info.json does not list (stray)")
    check_temporaries(root, report)


_DATUM_SHAPES = {"image": (3, 227, 227, np.uint8), "keypoint_loc": (1, 227, 227, np.uint8),
                 "gaussian_keypoint_map": (1, 227, 227, np.uint8), "chessboard_dt_map": (1, 227, 227, np.float32),
                 "euclidean_dt_map": (1, 227, 227, np.float32), "manhattan_dt_map": (1, 227, 227, np.float32),
                 "keypoint_class": (None, 1, 1, np.uint8), "viewpoint_label": (4, 1, 1, np.float32)}


def _decode_datums(txns: dict, key: bytes, n_classes) -> tuple[dict, list[str]]:
    arrs, problems = {}, []
    for field, (c, h, w, dtype) in _DATUM_SHAPES.items():
        raw = txns[field].get(key)
        if raw is None:
            problems.append(f"{chs.lmdb_name(field)}: no value")
            continue
        try:
            a = caffe.datum_to_array(bytes(raw))
        except Exception as e:  # noqa: BLE001 - protobuf DecodeError, reshape ValueError
            problems.append(f"{chs.lmdb_name(field)}: not a Caffe Datum of its stated shape ({type(e).__name__}: {e})")
            continue
        want_c = n_classes if (c is None and n_classes) else c
        if a.dtype != dtype or a.shape[1:] != (h, w) or (want_c is not None and a.shape[0] != want_c):
            problems.append(f"{chs.lmdb_name(field)}: Datum {a.shape} {a.dtype}, expected "
                            f"({want_c or 'C'}, {h}, {w}) {np.dtype(dtype).name}")
            continue
        arrs[field] = a
    if problems:
        return {}, problems
    loc = arrs["keypoint_loc"][0]
    hits = np.argwhere(loc == 255)
    if len(hits) != 1:
        return {}, [f"keypoint_loc has {len(hits)} pixels at 255, expected exactly 1"]
    return {"image": np.ascontiguousarray(arrs["image"].transpose(1, 2, 0)[..., ::-1]),
            "keypoint_pixel": hits[0][::-1].astype(np.int64), "keypoint_loc": loc,
            "gaussian_keypoint_map": arrs["gaussian_keypoint_map"][0], "chessboard_dt_map": arrs["chessboard_dt_map"][0],
            "euclidean_dt_map": arrs["euclidean_dt_map"][0], "manhattan_dt_map": arrs["manhattan_dt_map"][0],
            "keypoint_class": arrs["keypoint_class"].reshape(-1),
            "viewpoint_label": arrs["viewpoint_label"].reshape(-1)}, []


def _check_views_jsonl(d: str, rel: str, keys: set, c: Check) -> None:
    lines = _read_lines(os.path.join(d, "views.jsonl"), c, f"{rel}/views.jsonl")
    if lines is None:
        return
    listed = set()
    for i, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
            listed.update(obj["instances"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            c.defect(f"{rel}/views.jsonl", f"line {i} is not a view summary ({e})")
    if listed and listed != keys:
        c.defect(f"{rel}/views.jsonl", f"its instances ({len(listed)}) are not the LMDBs' keys ({len(keys)})")


def validate_clickhere(root, report, info, stats, max_records):
    record = info.get("record")
    if record == "caffe_datum":
        validate_caffe(root, report, info, stats, max_records)
    else:
        kind = (ClickHereViewKind if record == chs.CLICKHERE_VIEW.name else ClickHereInstanceKind)(info, report)
        validate_shards_dataset(root, report, info, stats, kind, max_records)
        decoded_all = not report.check("framing").defects and not report.check("records").defects
        if isinstance(kind, ClickHereViewKind) and max_records is None and decoded_all:
            for split, s in info["splits"].items():
                if s.get("num_instances") is not None and s["num_instances"] != kind.instances.get(split, 0):
                    report.check("files").defect(DATASET_INFO, f"split {split!r}: num_instances "
                                                 f"{s['num_instances']}, the views hold {kind.instances.get(split, 0)}")
        if isinstance(kind, ClickHereInstanceKind):
            for split, s in info["splits"].items():
                if s.get("num_instances") is not None and s["num_instances"] != s["num_examples"]:
                    report.check("files").defect(DATASET_INFO, f"split {split!r}: num_instances "
                                                 f"{s['num_instances']} != num_examples {s['num_examples']}")
    dropped = ((stats or {}).get("counts") or {}).get("views_dropped_no_keypoint", 0)
    return dropped


# ------------------------------------------------------------------------------ stereo sequences


def validate_sequences(root, report, info, stats, max_records):
    """render_stereo's KeyPose sequence tree: every listed sequence folder with its frames' files,
    data_params and KeyTargets that parse and agree, keypoints the projection of scene.json's
    world keypoints, the right camera the left one moved by the baseline, masks binary, depths
    finite with the mask inside Do > 0; the objects' CAD files."""
    import cv2

    from kpdata.keypose import exr
    c, inv_c = report.check("sequences"), report.check("invariants")
    cfg = info.get("config") or {}
    seqs = info.get("sequences")
    if not isinstance(seqs, list):
        report.check("metadata").defect(DATASET_INFO, "has no 'sequences' list")
        return
    cnt = (stats or {}).get("counts") or {}
    if cnt.get("sequences_written") not in (None, len(seqs)):
        report.check("metadata").defect(STATS, f"sequences_written {cnt['sequences_written']}, "
                                               f"dataset_info.json lists {len(seqs)}")
    frames_total = sum(int(s.get("frames", 0)) for s in seqs)
    if cnt.get("frames_written") not in (None, frames_total):
        report.check("metadata").defect(STATS, f"frames_written {cnt['frames_written']}, the sequences have {frames_total}")
    size = tuple(cfg.get("image_size") or ())
    per_seq = None if max_records is None else max(1, math.ceil(max_records / max(1, len(seqs))))
    n_frames = n_checked = 0
    objects = set()
    for s in seqs:
        key = s.get("key", "?")
        d = os.path.join(root, *key.split("/"))
        objects.add(s.get("object"))
        if not os.path.isdir(d):
            c.defect(key, "listed in dataset_info.json but missing")
            continue
        try:
            dp = keypose.read_data_params(os.path.join(d, keypose.DATA_PARAMS))
        except InputError as e:
            c.defect(f"{key}/{keypose.DATA_PARAMS}", e.message)
            continue
        if dp.num_kp != s.get("num_kp") or (size and (dp.resx, dp.resy) != size):
            c.defect(f"{key}/{keypose.DATA_PARAMS}", f"num_kp {dp.num_kp}, {dp.resx}x{dp.resy}; dataset_info.json "
                                                     f"says {s.get('num_kp')} keypoints, --image_size {size}")
        scene = _read_json(os.path.join(d, "scene.json"), c, f"{key}/scene.json") or {}
        kp_world = np.asarray(scene.get("keypoints_world", []), dtype=np.float64).reshape(-1, 3)
        frames = keypose.list_frames(d)
        n_frames += len(frames)
        if frames != [f"{i:06d}" for i in range(int(s.get("frames", 0)))]:
            c.defect(key, f"frames {frames[:3]}... are not 000000..{int(s.get('frames', 0)) - 1:06d} as listed")
        for fi, fid in enumerate(frames):
            for kind_ in keypose.SUFFIXES:
                if not os.path.isfile(keypose.frame_path(d, fid, kind_)):
                    c.defect(f"{key}/{fid}{keypose.SUFFIXES[kind_]}", "missing")
            if per_seq is not None and fi >= per_seq:
                continue
            n_checked += 1
            try:
                problems = _check_frame(d, fid, dp, kp_world, cv2, exr)
            except Exception as e:  # noqa: BLE001 - a frame odd enough to break a check is a defect
                problems = [f"checking the frame failed: {type(e).__name__}: {e}"]
            for p in problems:
                inv_c.defect(f"{key}/{fid}", p)
    for obj in sorted(o for o in objects if o):
        path = os.path.join(root, "objects", f"{obj}.obj")
        if not os.path.isfile(path):
            c.defect(f"objects/{obj}.obj", "missing (the KeyPose CAD file of a listed sequence)")
            continue
        try:
            cad = keypose.read_keypose_obj(path)
            nk = {s.get("num_kp") for s in seqs if s.get("object") == obj}
            if len(cad.keypoints) not in nk:
                c.defect(f"objects/{obj}.obj", f"{len(cad.keypoints)} keypoints, its sequences have {sorted(nk)}")
        except InputError as e:
            c.defect(f"objects/{obj}.obj", e.message)
    check_temporaries(root, report)
    c.note(f"{len(seqs)} sequence(s), {n_frames} frames, {len(objects)} object file(s)")
    inv_c.note(f"{n_checked} frames checked in full")


def _check_frame(d, fid, dp, kp_world, cv2, exr) -> list[str]:
    out = []
    kts = {}
    for side in ("L", "R"):
        try:
            kts[side] = keypose.read_key_targets(keypose.frame_path(d, fid, side + "_pb"))
        except InputError as e:
            out.append(f"{side}.pbtxt: {e.message}")
    imgs = {}
    for kind_ in ("L", "R", "mask", "border"):
        p = keypose.frame_path(d, fid, kind_)
        if os.path.isfile(p):
            img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
            if img is None:
                out.append(f"{kind_}: PNG does not decode")
                continue
            if img.shape[:2] != (dp.resy, dp.resx):
                out.append(f"{kind_}: {img.shape[1]}x{img.shape[0]}, data_params says {dp.resx}x{dp.resy}")
            imgs[kind_] = img
    for kind_ in ("mask", "border"):
        if kind_ in imgs:
            out += record_checks.check_binary(imgs[kind_], kind_, (0, 255))
    for kind_ in ("Do", "Dt"):
        if not os.path.isfile(keypose.frame_path(d, fid, kind_)):
            continue
        try:
            depth = exr.read_depth_exr(keypose.frame_path(d, fid, kind_))
        except InputError as e:
            out.append(f"{kind_}: {e.message}")
            continue
        if depth.shape != (dp.resy, dp.resx) or not np.all(np.isfinite(depth)) or depth.min() < 0:
            out.append(f"{kind_}: depth {depth.shape} must be {dp.resy}x{dp.resx}, finite, >= 0")
        elif kind_ == "Do" and "mask" in imgs and np.any((imgs["mask"] > 0) & ~(depth > 0)):
            out.append("mask covers pixels where Do has no hit")
    if len(kts) < 2:
        return out
    cam = dp.camera
    for side, kt in kts.items():
        targets = [kt.kp_target, *kt.proj_targets]
        if any(len(t.keypoints) != dp.num_kp for t in targets):
            out.append(f"{side}.pbtxt: keypoint counts {[len(t.keypoints) for t in targets]}, num_kp {dp.num_kp}")
            return out
        if list(kt.proj_targets[:1]) and list(kt.proj_targets[0].transform.element) != list(kt.kp_target.transform.element):
            out.append(f"{side}.pbtxt: proj_targets[0] is not the frame itself")
        for ti, t in enumerate(targets):
            what = f"{side}.pbtxt {'kp_target' if ti == 0 else f'proj_targets[{ti - 1}]'}"
            tm = keypose.transform_matrix(t)
            uvz = np.array([[k.u, k.v, k.z, k.x, k.y, k.visible] for k in t.keypoints], dtype=np.float64)
            if len(kp_world) == len(uvz) and len(uvz):
                pc = kp_world @ tm[:3, :3].T + tm[:3, 3]
                uv = np.stack([t.camera.fx * pc[:, 0] / pc[:, 2] + t.camera.cx,
                               t.camera.fy * pc[:, 1] / pc[:, 2] + t.camera.cy], axis=1)
                err = np.abs(uv - uvz[:, :2]).max()
                if err > 0.01 + 1e-6 * np.abs(uv).max():
                    out.append(f"{what}: u, v are not scene.json's world keypoints projected ({err:.3g} px off)")
                if np.abs(pc[:, 2] - uvz[:, 2]).max() > 1e-5 * np.abs(pc[:, 2]).max() + 1e-6:
                    out.append(f"{what}: z is not the keypoints' camera depth")
            if np.abs(uvz[:, 3] * t.camera.resx - uvz[:, 0]).max(initial=0) > 1e-3 or \
                    np.abs(uvz[:, 4] * t.camera.resy - uvz[:, 1]).max(initial=0) > 1e-3:
                out.append(f"{what}: x, y are not u / resx, v / resy")
            on = (uvz[:, 2] > 0) & (uvz[:, 0] >= 0) & (uvz[:, 0] < t.camera.resx) & (uvz[:, 1] >= 0) & \
                (uvz[:, 1] < t.camera.resy)
            if np.any((uvz[:, 5] == 1) & ~on):
                out.append(f"{what}: a visible keypoint is off the image")
    tl, tr = keypose.transform_matrix(kts["L"].kp_target), keypose.transform_matrix(kts["R"].kp_target)
    want = tl.copy()
    want[0, 3] -= cam.baseline
    if np.abs(tr - want).max() > 1e-5:
        out.append("R.pbtxt: transform is not the left camera's moved by the baseline along x")
    kl = np.array([[k.u, k.v, k.z] for k in kts["L"].kp_target.keypoints])
    kr = np.array([[k.u, k.v, k.z] for k in kts["R"].kp_target.keypoints])
    if len(kl) and (np.abs(kl[:, 1] - kr[:, 1]).max() > 0.01 or
                    np.abs(kl[:, 0] - kr[:, 0] - cam.fx * cam.baseline / kl[:, 2]).max() > 0.01):
        out.append("L/R keypoints are not a rectified pair (v_L = v_R, u_L - u_R = fx B / z)")
    return out


# ------------------------------------------------------------------------------------ HPatches


def validate_hpatches(hp_root: str, report: Report, max_records: int | None, expect: int | None = None,
                      label: str | None = None) -> None:
    """An HPatches-layout folder: each ``v_``/``i_`` sequence has 1..6.ppm (readable, one size)
    and H_1_2..H_1_6 (finite, invertible 3x3); ``i_`` homographies are the identity; in ``v_``
    sequences image k is image 1 warped by H_1_k."""
    import cv2
    c = report.check("hpatches")
    label = label or hp_root
    if not os.path.isdir(hp_root):
        c.defect(label, "not a folder")
        return
    seqs = sorted(n for n in os.listdir(hp_root) if os.path.isdir(os.path.join(hp_root, n)) and not n.startswith("."))
    full = len(seqs) if max_records is None else min(len(seqs), max_records)
    for i, name in enumerate(seqs):
        rel = f"{label}/{name}"
        if not re.match(r"^[iv]_", name):
            c.defect(rel, "a folder that is not an i_ or v_ sequence")
            continue
        d = os.path.join(hp_root, name)
        hs = {}
        for k in range(2, 7):
            p = os.path.join(d, f"H_1_{k}")
            try:
                h = np.loadtxt(p, dtype=np.float64)
                if h.shape != (3, 3) or not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-12:
                    raise ValueError(f"shape {h.shape}, det {np.linalg.det(h) if h.shape == (3, 3) else '-'}")
                hs[k] = h
            except (OSError, ValueError) as e:
                c.defect(f"{rel}/H_1_{k}", f"not a finite invertible 3x3 matrix ({e})")
        for k in range(1, 7):
            if not os.path.isfile(os.path.join(d, f"{k}.ppm")):
                c.defect(f"{rel}/{k}.ppm", "missing")
        if name.startswith("i_"):
            for k, h in hs.items():
                if not np.allclose(h / h[2, 2], np.eye(3), atol=1e-9):
                    c.defect(f"{rel}/H_1_{k}", "an illumination sequence's homography must be the identity")
        if i >= full:
            continue
        imgs = {}
        for k in range(1, 7):
            p = os.path.join(d, f"{k}.ppm")
            if os.path.isfile(p):
                img = cv2.imread(p, cv2.IMREAD_COLOR)
                if img is None:
                    c.defect(f"{rel}/{k}.ppm", "does not decode")
                else:
                    imgs[k] = img
        if name.startswith("v_") and 1 in imgs:
            for k, h in hs.items():
                if k in imgs:
                    p = record_checks.check_hpatches_warp(imgs[1], imgs[k], h)
                    if p:
                        c.defect(f"{rel}/H_1_{k}", p.replace("image k", f"{k}.ppm").replace("image 1", "1.ppm"))
    if expect is not None and len(seqs) != expect:
        c.defect(label, f"{len(seqs)} sequences, stats.json counts {expect} exported")
    check_temporaries_in(hp_root, c, label)
    c.note(f"{label}: {len(seqs)} sequences, {full} checked in full")


def check_temporaries_in(root: str, c: Check, label: str) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            if TEMP_NAME.search(name):
                c.defect(os.path.join(label, os.path.relpath(os.path.join(dirpath, name), root)),
                         "temporary name left behind: a write that never completed")
        dirnames[:] = [n for n in dirnames if not TEMP_NAME.search(n)]


def _looks_like_hpatches(root: str) -> bool:
    try:
        names = os.listdir(root)
    except OSError:
        return False
    return any(re.match(r"^[iv]_", n) and os.path.isfile(os.path.join(root, n, "1.ppm")) for n in names)


# ------------------------------------------------------------------------------------ dispatch


def validate(root: str, max_records: int | None = None, hpatches: str | None = None) -> Report:
    """Check the dataset in ``root``; UsageError when it is not a folder / not a kpdata dataset."""
    if not os.path.isdir(root):
        raise UsageError(f"{root}: no such folder")
    report = Report(root)
    if not os.path.isfile(os.path.join(root, DATASET_INFO)):
        if _looks_like_hpatches(root):
            report.kind = "HPatches layout"
            validate_hpatches(root, report, max_records, label=".")
            return report
        raise UsageError(f"{root}: no {DATASET_INFO}; not a kpdata dataset (or an HPatches-layout folder)")
    record = _peek_record(root)
    info, stats = check_metadata(root, report, needs_features=record != "keypose_sequences")
    if info is None:
        report.kind = "unreadable dataset_info.json"
        return report
    record, layout = info.get("record"), info.get("layout")
    dropped = None
    if layout == "clickhere":
        report.kind = f"clickhere {record}"
        dropped = validate_clickhere(root, report, info, stats, max_records)
    elif record == VIEW.name:
        report.kind = f"view, {_formats(info)}"
        validate_shards_dataset(root, report, info, stats, ViewKind(info, report), max_records)
    elif record == KEYPOINTNET_PAIR.name:
        report.kind = "keypointnet pairs"
        validate_keypointnet(root, report, info, stats, max_records)
    elif record == KEYPOSE.name:
        report.kind = f"keypose records, {_formats(info)}"
        validate_keypose(root, report, info, stats, max_records)
    elif record == "keypose_sequences":
        report.kind = "KeyPose sequence folders"
        validate_sequences(root, report, info, stats, max_records)
    elif record == KP2D_PAIR.name:
        report.kind = f"kp2d pairs, {_formats(info)}"
        validate_shards_dataset(root, report, info, stats, KP2DKind(info, report), max_records)
        hp = hpatches or (info.get("config") or {}).get("hpatches_out")
        if hp:
            if os.path.isdir(hp):
                expect = None if hpatches else ((stats or {}).get("counts") or {}).get("hpatches_sequences")
                validate_hpatches(hp, report, max_records, expect, label=hp)
            elif hpatches:
                report.check("hpatches").defect(hp, "no such folder")
            else:
                report.check("hpatches").skipped = True
                report.check("hpatches").note(f"{hp} (the run's --hpatches_out) not found here; pass --hpatches DIR")
    else:
        raise UsageError(f"{root}: {DATASET_INFO} has record {record!r} (layout {layout!r}), not a kind this "
                         f"validator knows")
    if hpatches and record != KP2D_PAIR.name:
        validate_hpatches(hpatches, report, max_records, label=hpatches)
    check_errors(root, report, stats, dropped)
    return report


def _peek_record(root: str):
    try:
        with open(os.path.join(root, DATASET_INFO), encoding="utf-8") as f:
            return json.load(f).get("record")
    except (OSError, ValueError, AttributeError):
        return None


def _formats(info: dict) -> str:
    return "/".join(sorted({s.get("format", "?") for s in info.get("splits", {}).values() if isinstance(s, dict)})) or "no splits"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.validate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset_dir", nargs="?", default="kpdata_out",
                   help="a folder a kpdata pipeline wrote, or an HPatches-layout folder (default: %(default)s)")
    p.add_argument("--max_records", type=int, default=None,
                   help="check at most N records per split in full (decode, invariants, data CRCs); every file is "
                        "still framed and counted (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.add_argument("--hpatches", default=None,
                   help="also check this HPatches-layout folder (default: a kp2d run's --hpatches_out when found)")
    return p


def run(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    if args.max_records is not None and args.max_records < 1:
        print("error: --max_records must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = validate(args.dataset_dir, args.max_records, args.hpatches)
    except UsageError as e:
        if args.json:
            print(json.dumps({"dir": args.dataset_dir, "ok": False, "usage_error": str(e)}))
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text())
    return EXIT_DEFECTS if report.defects else EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
