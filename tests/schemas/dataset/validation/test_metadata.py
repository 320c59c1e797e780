"""kpdata_info.json / stats.json: parsed, complete, consistent; kpdata_info.json's features is the
schema's description; TFDS's dataset_info.json / features.json agree with the shards and schema."""
import json
import os

from schemas import tfrecord
from schemas.dataset import names, tfds
from schemas.dataset.validation.metadata import check_features_match, check_metadata, check_tfds
from schemas.dataset.validation.report import Report
from schemas.view import VIEW

INFO = {"name": "n", "record": "view", "config": {}, "seed": 1, "command": "c", "code_version": "0",
        "splits": {"train": {"shards": [{"file": "a", "examples": 2, "bytes": 10},
                                        {"file": "b", "examples": 3, "bytes": 5}],
                             "num_examples": 5, "num_bytes": 15}}}
STATS = {"counts": {"records_written": 5}, "failures": {"total": 0}, "failure_rate": 0.0}


def _folder(tmp_path, info=INFO, stats=STATS, features=None):
    if not isinstance(info, str):
        info = json.dumps(dict(info, features=features if features is not None else VIEW.describe()))
    (tmp_path / "kpdata_info.json").write_text(info)
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    return str(tmp_path)


def _messages(report):
    return [(d.file, d.message) for d in report.defects]


def test_consistent_metadata(tmp_path):
    r = Report(str(tmp_path))
    info, stats = check_metadata(_folder(tmp_path), r)
    assert info["name"] == "n" and stats == STATS and r.defects == []
    assert r.checks["metadata"].notes == ["kpdata_info.json, stats.json read"]
    check_features_match(str(tmp_path), r, VIEW)
    assert r.defects == []


def test_missing_keys_totals_and_counts(tmp_path):
    info = json.loads(json.dumps(INFO))
    del info["seed"], info["config"]
    info["splits"]["train"]["num_examples"] = 4
    info["splits"]["test"] = {"shards": [{"file": "c", "examples": -1, "bytes": 0}]}
    r = Report(str(tmp_path))
    got, _ = check_metadata(_folder(tmp_path, info, dict(STATS, counts={"records_written": 9})), r)
    assert got["seed"] == 0 and got["config"] == {} and got["splits"]["test"] == {"shards": []}
    assert _messages(r) == [
        ("kpdata_info.json", "has no 'config'"), ("kpdata_info.json", "has no 'seed'"),
        ("kpdata_info.json", "split 'train': num_examples is 4, its shards sum to 5"),
        ("kpdata_info.json", "split 'test': shards must be a list of {file, examples >= 0, bytes >= 0}"),
        ("stats.json", "counts.records_written is 9, kpdata_info.json lists 4 examples")]
    r = Report(str(tmp_path))  # a folder of sequences counts no records and has no features.json
    check_metadata(_folder(tmp_path, info, dict(STATS, counts={"records_written": 9})), r, needs_features=False,
                   counts_records=False)
    assert ("stats.json", "counts.records_written is 9, kpdata_info.json lists 4 examples") not in _messages(r)
    assert r.checks["metadata"].notes == ["kpdata_info.json, stats.json read"]


def test_unparseable_and_non_object_info(tmp_path):
    r = Report(str(tmp_path))
    assert check_metadata(_folder(tmp_path, "{nope"), r)[0] is None
    assert r.defects[0].file == "kpdata_info.json" and r.defects[0].message.startswith("does not parse as JSON")
    r = Report(str(tmp_path))
    assert check_metadata(_folder(tmp_path, "[1]"), r)[0] is None
    assert _messages(r) == [("kpdata_info.json", "is not a JSON object")]


def test_features_json_differing_from_the_schema(tmp_path):
    desc = VIEW.describe()
    desc["fields"] = desc["fields"][1:]
    r = Report(str(tmp_path))
    check_metadata(_folder(tmp_path, features=desc), r)
    check_features_match(str(tmp_path), r, VIEW)
    assert _messages(r) == [("kpdata_info.json", f"'features' differs from the view schema's description (fields "
                                                 f"['{VIEW.fields[0].name}'])")]
    r = Report(str(tmp_path))
    check_metadata(_folder(tmp_path, features={"nope": 1}), r)
    assert _messages(r) == [("kpdata_info.json", "'features' is not a schema description (needs name and fields)")]


def _tfds_folder(tmp_path):
    """Two TFRecord shards of split train in TFDS's template and kpdata_info's split listing."""
    shards = []
    for i, n in enumerate((2, 1)):
        name = names.shard_name("n", "train", i, 2)
        with open(tmp_path / name, "wb") as f:
            size = tfrecord.write_records(f, [b"x" * (10 + j) for j in range(n)])
        shards.append({"file": name, "examples": n, "bytes": size})
    info = {"name": "n", "splits": {"train": {"format": "tfrecord", "shards": shards}}}
    (tmp_path / names.DATASET_INFO).write_text(json.dumps(tfds.dataset_info_json("n", VIEW, info["splits"])))
    (tmp_path / names.FEATURES).write_text(json.dumps(tfds.features_json(VIEW)))
    return info, shards


def test_tfds_metadata_agrees_with_the_shards(tmp_path):
    info, shards = _tfds_folder(tmp_path)
    r = Report(str(tmp_path))
    check_tfds(str(tmp_path), r, VIEW, info)
    assert r.defects == [] and r.checks["metadata"].notes == ["TFDS dataset_info.json, features.json read"]
    ti = json.loads((tmp_path / names.DATASET_INFO).read_text())
    assert ti["splits"] == [{"name": "train", "numBytes": str(sum(os.path.getsize(tmp_path / s["file"]) for s in shards)),
                             "shardLengths": ["2", "1"], "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]
    ti["splits"][0]["shardLengths"] = ["1", "2"]
    ti["splits"][0]["numBytes"] = "3"
    ti["version"] = "9.9.9"
    (tmp_path / names.DATASET_INFO).write_text(json.dumps(ti))
    (tmp_path / names.FEATURES).write_text(json.dumps({"type": "x"}))
    r = Report(str(tmp_path))
    check_tfds(str(tmp_path), r, VIEW, info)
    on_disk = sum(os.path.getsize(tmp_path / s["file"]) for s in shards)
    assert _messages(r) == [
        ("features.json", "is not TFDS's FeaturesDict of the view schema"),
        ("dataset_info.json", "version is '9.9.9', expected '1.0.0'"),
        ("dataset_info.json", "split 'train': shardLengths ['1', '2'], the shards hold ['2', '1']"),
        ("dataset_info.json", f"split 'train': numBytes 3, its shard files have {on_disk}")]
    os.remove(tmp_path / names.DATASET_INFO)
    r = Report(str(tmp_path))
    check_tfds(str(tmp_path), r, VIEW, info)
    assert ("dataset_info.json", "missing or not JSON; TFDS (tfds.builder_from_directory) cannot open the folder") \
        in _messages(r)


def test_lmdb_and_foreign_file_names_need_no_tfds_metadata(tmp_path):
    info, shards = _tfds_folder(tmp_path)
    os.remove(tmp_path / names.DATASET_INFO)
    for splits in ({"train": dict(info["splits"]["train"], format="lmdb")},
                   {"train": dict(info["splits"]["train"], shards=[dict(shards[0], file="0000.tfrecord")])}):
        assert not tfds.tfds_compatible("n", splits)
        r = Report(str(tmp_path))
        check_tfds(str(tmp_path), r, VIEW, dict(info, splits=splits))
        assert r.defects == []
