"""Sinks: sharded TFRecord and LMDB writers, dead-letter files and dataset metadata.

Records reach the sinks as ``(split, key, serialized_example)``. A record's shard is a stable
hash of its key, each shard is sorted by key and written under a temporary name, then renamed:
the same inputs give byte-identical shards whatever the runner or the number of workers.
Every shard (and the dead-letter file) is written even when it receives nothing, so a reader
always finds the layout ``dataset_info.json`` describes.
"""
from __future__ import annotations

import collections
import json
import os
import shutil

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from kpdata.seeding import bucket
from schemas import tfrecord
from schemas.dataset import lmdb

from schemas.dataset.names import ERRORS_DIR, FAILURES_FILE, lmdb_name, shard_name, tmp_name

# Target size of one TFRecord shard when --num_shards is 0 (automatic).
TARGET_SHARD_BYTES = 256 << 20


def auto_num_shards(num_records: int, bytes_per_record: float) -> int:
    return max(1, -(-int(num_records * bytes_per_record) // TARGET_SHARD_BYTES))


def write_tfrecord_shard(path: str, records) -> dict:
    """Write ``records`` [(key, bytes)] sorted by key to ``path`` atomically; a duplicate key is
    an error. Returns {"file", "examples", "bytes"}."""
    records = sorted(records, key=lambda kv: kv[0])
    for (a, _), (b, _) in zip(records, records[1:]):
        if a == b:
            raise ValueError(f"duplicate record key {a!r} in {os.path.basename(path)}")
    tmp = tmp_name(path)
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        size = tfrecord.write_records(f, (value for _, value in records))
    _replace(tmp, path)
    return {"file": os.path.basename(path), "examples": len(records), "bytes": size}


def _replace(tmp: str, path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_lmdb(path: str, records) -> dict:
    """Write ``records`` [(key, bytes)] into a new LMDB environment (a folder) at ``path``,
    atomically (written aside, then renamed). Keys are the record keys, UTF-8; LMDB keeps them
    sorted. A duplicate key is an error."""
    tmp = tmp_name(path)
    os.makedirs(tmp)
    env = lmdb.open_write(tmp)
    n = 0
    try:
        txn = env.begin(write=True)
        for key, value in records:
            if not txn.put(key.encode("utf-8"), value, overwrite=False):
                raise ValueError(f"duplicate record key {key!r} in {os.path.basename(path)}")
            n += 1
            if n % 1000 == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
        env.sync(True)
    finally:
        env.close()
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return {"file": os.path.basename(path), "examples": n, "bytes": size}


class WriteShards(beam.PTransform):
    """(split, key, bytes) -> one dict per written shard:
    {split, index, num_shards, file, examples, bytes}.

    ``shards``: {split: number of shards}; for ``fmt='lmdb'`` each split is one environment.
    """

    def __init__(self, output_dir: str, name: str, fmt: str, shards: dict[str, int]):
        super().__init__()
        if fmt not in ("tfrecord", "lmdb"):
            raise ValueError(f"unknown output format {fmt!r} (expected tfrecord or lmdb)")
        self.output_dir, self.name, self.fmt = output_dir, name, fmt
        self.shards = {s: (1 if fmt == "lmdb" else int(n)) for s, n in shards.items()}

    def expand(self, records):
        shards = self.shards

        def assign(rec):
            split, key, value = rec
            if split not in shards:
                raise ValueError(f"record {key!r} has split {split!r}, not one of {sorted(shards)}")
            return (split, bucket(key, shards[split])), (key, value)

        every_shard = [(s, i) for s, n in sorted(shards.items()) for i in range(n)]
        keyed = records | "AssignShard" >> beam.Map(assign)
        empty = (records.pipeline | "EveryShard" >> beam.Create(every_shard)
                 | "NoRecords" >> beam.Map(lambda s: (s, None)))
        return (({"records": keyed, "present": empty}) | "GroupShards" >> beam.CoGroupByKey()
                | "WriteShard" >> beam.Map(self._write))

    def _write(self, item):
        (split, index), groups = item
        records = groups["records"]
        if self.fmt == "tfrecord":
            n = self.shards[split]
            info = write_tfrecord_shard(os.path.join(self.output_dir, shard_name(self.name, split, index, n)), records)
        else:
            info = write_lmdb(os.path.join(self.output_dir, lmdb_name(self.name, split)), records)
        return {"split": split, "index": index, "num_shards": self.shards[split], **info}


def failure_record(key: str, stage: str, error: str, message: str, path: str) -> dict:
    """One dead-letter line (DESIGN §4): key, stage, error, message, input path."""
    return {"key": key, "stage": stage, "error": error, "message": message, "path": path}


def failure_summary(failures) -> dict:
    """``stats.json``'s "failures": the total and the counts by stage and by error kind."""
    return {"total": len(failures), "by_stage": dict(collections.Counter(f["stage"] for f in failures)),
            "by_error": dict(collections.Counter(f["error"] for f in failures))}


class WriteDeadLetters(beam.PTransform):
    """Failure dicts -> ``errors/failures.jsonl`` (or ``errors/<file_name>``; sorted by key, stage;
    always written). Outputs the file's path."""

    def __init__(self, output_dir: str, file_name: str = FAILURES_FILE):
        super().__init__()
        self.output_dir = output_dir
        self.file_name = file_name

    def expand(self, failures):
        keyed = failures | "KeyAll" >> beam.Map(lambda f: (0, f))
        present = failures.pipeline | "Present" >> beam.Create([(0, None)])
        return (({"failures": keyed, "present": present}) | "GroupFailures" >> beam.CoGroupByKey()
                | "WriteFailures" >> beam.Map(lambda kv: self._write(kv[1]["failures"])))

    def _write(self, failures):
        path = os.path.join(self.output_dir, ERRORS_DIR, self.file_name)
        rows = sorted(failures, key=lambda f: (f["key"], f["stage"], f["error"]))
        write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        return path


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (local or any filesystem Beam knows, e.g. gs://)
    atomically: a temporary name first, then a rename."""
    parent = os.path.dirname(path)
    if parent and not FileSystems.exists(parent):
        FileSystems.mkdirs(parent)
    tmp = tmp_name(path)
    with FileSystems.create(tmp, mime_type="text/plain", compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(text.encode("utf-8"))
    _replace(tmp, path)


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read().decode("utf-8"))


def splits_info(shard_infos: list[dict], fmt: str) -> dict:
    """{split: {num_examples, num_bytes, shards: [{file, examples, bytes}]}} from shard dicts."""
    out: dict = {}
    for s in sorted(shard_infos, key=lambda d: (d["split"], d["index"])):
        split = out.setdefault(s["split"], {"format": fmt, "num_examples": 0, "num_bytes": 0, "shards": []})
        split["num_examples"] += s["examples"]
        split["num_bytes"] += s["bytes"]
        split["shards"].append({"file": s["file"], "examples": s["examples"], "bytes": s["bytes"]})
    return out
