"""dataset_info.json / stats.json / features.json: parsed, complete, consistent; features.json is
the schema's description."""
import json

from schemas.dataset.validation.metadata import check_features_match, check_metadata
from schemas.dataset.validation.report import Report
from schemas.view import VIEW

INFO = {"name": "n", "record": "view", "config": {}, "seed": 1, "command": "c", "code_version": "0",
        "splits": {"train": {"shards": [{"file": "a", "examples": 2, "bytes": 10},
                                        {"file": "b", "examples": 3, "bytes": 5}],
                             "num_examples": 5, "num_bytes": 15}}}
STATS = {"counts": {"records_written": 5}, "failures": {"total": 0}, "failure_rate": 0.0}


def _folder(tmp_path, info=INFO, stats=STATS, features=None):
    (tmp_path / "dataset_info.json").write_text(info if isinstance(info, str) else json.dumps(info))
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    (tmp_path / "features.json").write_text(json.dumps(features if features is not None else VIEW.describe()))
    return str(tmp_path)


def _messages(report):
    return [(d.file, d.message) for d in report.defects]


def test_consistent_metadata(tmp_path):
    r = Report(str(tmp_path))
    info, stats = check_metadata(_folder(tmp_path), r)
    assert info["name"] == "n" and stats == STATS and r.defects == []
    assert r.checks["metadata"].notes == ["dataset_info.json, stats.json, features.json read"]
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
        ("dataset_info.json", "has no 'config'"), ("dataset_info.json", "has no 'seed'"),
        ("dataset_info.json", "split 'train': num_examples is 4, its shards sum to 5"),
        ("dataset_info.json", "split 'test': shards must be a list of {file, examples >= 0, bytes >= 0}"),
        ("stats.json", "counts.records_written is 9, dataset_info.json lists 4 examples")]
    r = Report(str(tmp_path))  # a folder of sequences counts no records and has no features.json
    check_metadata(_folder(tmp_path, info, dict(STATS, counts={"records_written": 9})), r, needs_features=False,
                   counts_records=False)
    assert ("stats.json", "counts.records_written is 9, dataset_info.json lists 4 examples") not in _messages(r)
    assert r.checks["metadata"].notes == ["dataset_info.json, stats.json read"]


def test_unparseable_and_non_object_info(tmp_path):
    r = Report(str(tmp_path))
    assert check_metadata(_folder(tmp_path, "{nope"), r)[0] is None
    assert r.defects[0].file == "dataset_info.json" and r.defects[0].message.startswith("does not parse as JSON")
    r = Report(str(tmp_path))
    assert check_metadata(_folder(tmp_path, "[1]"), r)[0] is None
    assert _messages(r) == [("dataset_info.json", "is not a JSON object")]


def test_features_json_differing_from_the_schema(tmp_path):
    desc = VIEW.describe()
    desc["fields"] = desc["fields"][1:]
    r = Report(str(tmp_path))
    check_metadata(_folder(tmp_path, features=desc), r)
    check_features_match(str(tmp_path), r, VIEW)
    assert _messages(r) == [("features.json", f"differs from the view schema's description (fields "
                                              f"['{VIEW.fields[0].name}'])")]
    r = Report(str(tmp_path))
    check_metadata(_folder(tmp_path, features={"nope": 1}), r)
    assert _messages(r) == [("features.json", "not a schema description (needs name and fields)")]
