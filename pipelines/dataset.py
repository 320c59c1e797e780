"""Reading a produced dataset back: its metadata and its serialized records."""
from __future__ import annotations

import os

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines import sinks
from schemas import tfrecord
from schemas.dataset import lmdb


def load_info(output_dir: str) -> dict:
    path = os.path.join(output_dir, sinks.DATASET_INFO)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"{path}: no dataset_info.json; is {output_dir} a kpdata dataset?")
    return sinks.read_json(path)


def iter_records(output_dir: str, split: str | None = None, info: dict | None = None):
    """Yield the serialized records of ``split`` (all splits when None), shard by shard in
    key order, as ``(split, bytes)``."""
    info = info or load_info(output_dir)
    for name, s in sorted(info["splits"].items()):
        if split is not None and name != split:
            continue
        for shard in s["shards"]:
            path = os.path.join(output_dir, shard["file"])
            if s.get("format", "tfrecord") == "lmdb":
                for value in lmdb.values(path):
                    yield name, value
            else:
                with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    for raw in tfrecord.read_records(f, path):
                        yield name, raw
