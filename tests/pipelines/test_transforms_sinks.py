"""The sink PTransforms under Beam's TestPipeline (no GL): WriteShards (TFRecord and LMDB) and
WriteDeadLetters on a handful of synthetic records. The shard contents are read back: every
record in the shard its key hashes to, sorted by key; every planned shard written, even empty;
a duplicate key fails the pipeline."""
import json
import os

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from kpdata.seeding import bucket
from pipelines import sinks
from schemas import tfrecord
from schemas.dataset import lmdb
from schemas.dataset.names import ERRORS_DIR, FAILURES_FILE, shard_name

KEYS = {"train": [f"m{i % 3}/v{i:03d}" for i in range(11)], "test": ["m9/v000", "m9/v001"]}
RECORDS = [(split, key, f"{split}:{key}".encode()) for split, keys in KEYS.items() for key in keys]


def _read_shard(path):
    with open(path, "rb") as f:
        return list(tfrecord.read_records(f, path))


def test_write_shards_tfrecord(tmp_path):
    out = str(tmp_path)
    shards = {"train": 3, "test": 2, "val": 1}  # val gets no record: its shard is still written
    with test_pipeline.TestPipeline() as p:
        infos = (p | beam.Create(RECORDS)
                 | "WriteShards" >> sinks.WriteShards(out, "ds", "tfrecord", shards))
        expected = []
        for split, n in shards.items():
            for i in range(n):
                members = [k for k in KEYS.get(split, []) if bucket(k, n) == i]
                expected.append((split, i, n, shard_name("ds", split, i, n), len(members)))
        assert_that(infos | beam.Map(lambda d: (d["split"], d["index"], d["num_shards"], d["file"], d["examples"])),
                    equal_to(expected))
    files = sorted(f for f in os.listdir(out))
    assert files == sorted(shard_name("ds", s, i, n) for s, n in shards.items() for i in range(n))
    for split, n in shards.items():
        for i in range(n):
            got = _read_shard(os.path.join(out, shard_name("ds", split, i, n)))
            want = sorted(k for k in KEYS.get(split, []) if bucket(k, n) == i)
            assert got == [f"{split}:{k}".encode() for k in want]  # every record, sorted by key


def test_write_shards_lmdb(tmp_path):
    out = str(tmp_path)
    with test_pipeline.TestPipeline() as p:
        infos = p | beam.Create(RECORDS) | sinks.WriteShards(out, "ds", "lmdb", {"train": 4, "test": 1})
        assert_that(infos | beam.Map(lambda d: (d["split"], d["index"], d["num_shards"], d["file"], d["examples"])),
                    equal_to([("train", 0, 1, "ds-train.lmdb", 11), ("test", 0, 1, "ds-test.lmdb", 2)]))
    for split, keys in KEYS.items():
        items = list(lmdb.items(os.path.join(out, f"ds-{split}.lmdb")))
        assert items == [(k.encode(), f"{split}:{k}".encode()) for k in sorted(keys)]


@pytest.mark.parametrize("fmt", ["tfrecord", "lmdb"])
def test_write_shards_refuses_duplicate_keys(tmp_path, fmt):
    records = RECORDS + [("train", KEYS["train"][4], b"again")]
    with pytest.raises(Exception, match="duplicate record key 'm1/v004'"):
        with test_pipeline.TestPipeline() as p:
            _ = p | beam.Create(records) | sinks.WriteShards(str(tmp_path), "ds", fmt, {"train": 1, "test": 1})


def test_write_shards_refuses_unknown_split_and_format(tmp_path):
    with pytest.raises(ValueError, match="unknown output format 'parquet'"):
        sinks.WriteShards(str(tmp_path), "ds", "parquet", {"train": 1})
    with pytest.raises(Exception, match="split 'test', not one of \\['train'\\]"):
        with test_pipeline.TestPipeline() as p:
            _ = p | beam.Create(RECORDS) | sinks.WriteShards(str(tmp_path), "ds", "tfrecord", {"train": 1})


FAILURES = [sinks.failure_record("m2", "load", "corrupt_mesh", "cannot parse OBJ", "/data/m2/model.obj"),
            sinks.failure_record("m0", "render", "no_keypoints", "no annotation", "/data/m0"),
            sinks.failure_record("m0", "load", "missing_texture", "texture missing", "/data/m0/t.png")]


def test_write_dead_letters_sorted_by_key_and_stage(tmp_path):
    out = str(tmp_path)
    path = os.path.join(out, ERRORS_DIR, FAILURES_FILE)
    with test_pipeline.TestPipeline() as p:
        written = p | beam.Create(FAILURES) | sinks.WriteDeadLetters(out)
        assert_that(written, equal_to([path]))
    rows = [json.loads(line) for line in open(path).read().splitlines()]
    assert [(r["key"], r["stage"]) for r in rows] == [("m0", "load"), ("m0", "render"), ("m2", "load")]
    assert rows[0] == FAILURES[2]
    assert sinks.failure_summary(rows) == {"total": 3, "by_stage": {"load": 2, "render": 1},
                                           "by_error": {"missing_texture": 1, "no_keypoints": 1, "corrupt_mesh": 1}}


def test_write_dead_letters_writes_an_empty_file_for_no_failures(tmp_path):
    out = str(tmp_path)
    with test_pipeline.TestPipeline() as p:
        written = p | beam.Create([]) | sinks.WriteDeadLetters(out, "dropped.jsonl")
        assert_that(written, equal_to([os.path.join(out, ERRORS_DIR, "dropped.jsonl")]))
    assert open(os.path.join(out, ERRORS_DIR, "dropped.jsonl")).read() == ""
