"""The record-by-record shard checks with a toy record kind: counts and bytes as listed, keys
unique and sorted within a TFRecord, equal to the LMDB key, the kind's key rule and invariants,
unlisted shards."""
import json
import os

import numpy as np

from schemas import tfrecord
from schemas.dataset import lmdb
from schemas.dataset.validation.report import Report
from schemas.dataset.validation.shards import ShardedKind, validate_shards
from schemas.features import Schema, Tensor, Text

TOY = Schema("toy", "1.0.0", (Text("key"), Tensor("value")))


class ToyKind(ShardedKind):
    record = "toy"
    schema = TOY

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        return None if key.startswith(split) else f"key {key!r} is not of split {split!r}"

    def invariants(self, rec, split):
        if rec["value"] < 0:
            raise ZeroDivisionError("negative")
        return [] if rec["value"] < 100 else [f"value {rec['value']:g} too large"]


def _encode(key, value=1.0):
    return TOY.encode({"key": key, "value": np.float32(value)})


def _dataset(root, shards: dict, fmt="tfrecord"):
    """shards: {file: [(key, value)]}, all in split "train"; writes the files and kpdata_info."""
    listed = []
    for name, recs in shards.items():
        path = os.path.join(root, name)
        if fmt == "lmdb":
            env = lmdb.open_write(path)
            with env.begin(write=True) as txn:
                for k, v in recs:
                    txn.put(k.encode(), _encode(k, v))
            env.close()
            size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        else:
            with open(path, "wb") as f:
                size = tfrecord.write_records(f, [_encode(k, v) for k, v in recs])
        listed.append({"file": name, "examples": len(recs), "bytes": size})
    info = {"splits": {"train": {"format": fmt, "shards": listed}}, "config": {}, "seed": 0, "features": TOY.describe()}
    with open(os.path.join(root, "kpdata_info.json"), "w") as f:
        json.dump(info, f)
    return info


def _validate(root, info, max_records=None):
    report = Report(str(root))
    validate_shards(str(root), report, info, ToyKind(info, report), max_records)
    return report, [(d.check, d.file, d.key, d.message) for d in report.defects]


def test_clean_shards(tmp_path):
    info = _dataset(tmp_path, {"t-0": [("train/a", 1), ("train/b", 2)], "t-1": [("train/c", 3)]})
    report, defects = _validate(tmp_path, info)
    assert defects == []
    assert {n: c.notes for n, c in report.checks.items()} == {
        "files": ["2 shard(s), 3 records, 0.0 MB", "no temporary files"], "framing": ["length and data CRCs"],
        "records": ["3 of 3 records decoded with toy"], "keys": ["3 keys"], "invariants": ["3 records"]}
    report, _ = _validate(tmp_path, info, max_records=1)
    assert report.checks["records"].notes == ["1 of 3 records decoded with toy"]


def test_key_order_duplicates_rule_and_invariants(tmp_path):
    info = _dataset(tmp_path, {"t-0": [("train/b", 1), ("train/a", 500), ("test/x", -1)], "t-1": [("train/a", 1)]})
    _, defects = _validate(tmp_path, info)
    assert defects == [  # grouped by check
        ("keys", "t-0", "train/a", "not sorted: follows 'train/b'"),
        ("keys", "t-0", "test/x", "not sorted: follows 'train/a'"),
        ("keys", "t-0", "test/x", "key 'test/x' is not of split 'train'"),
        ("keys", "t-1", "train/a", "duplicate key (also in t-0)"),
        ("invariants", "t-0", "train/a", "value 500 too large"),
        ("invariants", "t-0", "test/x", "checking the record failed: ZeroDivisionError: negative")]


def test_listed_counts_bytes_missing_and_stray(tmp_path):
    info = _dataset(tmp_path, {"t-0": [("train/a", 1)], "t-1": [("train/b", 1)], "t-2": [("train/c", 1)]})
    shards = info["splits"]["train"]["shards"]
    shards[0]["examples"] = 2
    shards[1]["bytes"] += 1
    os.remove(tmp_path / "t-2")
    (tmp_path / "other.tfrecord-00000-of-00001").write_bytes(b"")
    _, defects = _validate(tmp_path, info)
    assert defects == [
        ("files", "t-0", None, "1 records, kpdata_info.json lists 2"),
        ("files", "t-1", None, f"{shards[1]['bytes'] - 1} bytes, kpdata_info.json lists {shards[1]['bytes']}"),
        ("files", "t-2", None, "listed in kpdata_info.json but missing"),
        ("files", "other.tfrecord-00000-of-00001", None, "a shard file kpdata_info.json does not list (stray)")]


def test_lmdb_key_must_be_the_records_key(tmp_path):
    info = _dataset(tmp_path, {"t.lmdb": [("train/a", 1), ("train/b", 2)]}, fmt="lmdb")
    env = lmdb.open_write(str(tmp_path / "t.lmdb"))
    with env.begin(write=True) as txn:
        txn.put(b"train/c", _encode("train/z"))
    env.close()
    info["splits"]["train"]["shards"][0].update(examples=3, bytes=sum(
        os.path.getsize(tmp_path / "t.lmdb" / f) for f in os.listdir(tmp_path / "t.lmdb")))
    report, defects = _validate(tmp_path, info)
    assert defects == [("keys", "t.lmdb", "train/z", "LMDB key 'train/c' differs from the record's key field")]
    assert "framing" not in report.checks
