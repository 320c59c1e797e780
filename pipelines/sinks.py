"""Sinks: dead-letter files, the dataset's small files (JSON, text) and the shard statistics.

Records reach their shards through the streaming write path (:mod:`pipelines.stream`); this module
holds what the driver writes beside them.
"""
from __future__ import annotations

import collections
import json
import os

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from schemas.dataset.names import ERRORS_DIR, FAILURES_FILE, tmp_name

# Target size of one TFRecord shard when --num_shards is 0 (automatic).
TARGET_SHARD_BYTES = 256 << 20


def auto_num_shards(num_records: int, bytes_per_record: float) -> int:
    return max(1, -(-int(num_records * bytes_per_record) // TARGET_SHARD_BYTES))


def _replace(tmp: str, path: str) -> None:
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def failure_record(key: str, stage: str, error: str, message: str, path: str) -> dict:
    """One dead-letter line (DESIGN §4): key, stage, error, message, input path."""
    return {"key": key, "stage": stage, "error": error, "message": message, "path": path}


def failure_summary(failures) -> dict:
    """``stats.json``'s "failures": the total and the counts by stage and by error kind."""
    return {"total": len(failures), "by_stage": dict(collections.Counter(f["stage"] for f in failures)),
            "by_error": dict(collections.Counter(f["error"] for f in failures))}


def write_dead_letters(output_dir: str, failures: list[dict], file_name: str = FAILURES_FILE) -> str:
    """Failure dicts -> ``errors/failures.jsonl`` (or ``errors/<file_name>``), sorted by key, stage,
    error, identical lines once (a background photo rejected by two workers); always written (empty
    when nothing failed). Returns the file's path."""
    path = os.path.join(output_dir, ERRORS_DIR, file_name)
    lines = sorted({json.dumps(r, sort_keys=True): r for r in failures}.items(),
                   key=lambda kv: (kv[1]["key"], kv[1]["stage"], kv[1]["error"], kv[0]))
    write_text(path, "".join(line + "\n" for line, _ in lines))
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
