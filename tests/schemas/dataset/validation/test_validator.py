"""validate(): the record kind looked up by kpdata_info.json's record name, usage errors, the
HPatches-only folder, metadata before the kind's checks, the dead letters after."""
import json

import pytest

from schemas import clickhere as chs
from schemas.dataset.names import KEYPOSE_SEQUENCES
from schemas.dataset.validation import KINDS, RecordKind, UsageError, validate
from schemas.dataset.validation.kinds import config_splits, formats, registry
from schemas.keypointnet import KEYPOINTNET_PAIR
from schemas.keypose import KEYPOSE
from schemas.kp2d import KP2D_PAIR
from schemas.view import VIEW

from .test_hpatches import write_layout


def test_one_kind_per_record_name():
    assert set(KINDS) == {VIEW.name, chs.CLICKHERE_VIEW.name, chs.CLICKHERE_INSTANCE.name, chs.CAFFE_LAYOUT.name,
                          KEYPOINTNET_PAIR.name, KEYPOSE.name, KEYPOSE_SEQUENCES, KP2D_PAIR.name}
    assert all(issubclass(k, RecordKind) and k.record == name for name, k in KINDS.items())
    with pytest.raises(ValueError, match="already taken"):
        registry(KINDS[VIEW.name], KINDS[VIEW.name])
    info = {"splits": {"a": {"format": "lmdb"}, "b": {}}, "config": {}}
    assert formats(info) == "?/lmdb" and formats({"splits": {}}) == "no splits"
    assert config_splits({}) == [("train", 1.0)] and config_splits({"splits": [["a", 0.5]]}) == [("a", 0.5)]
    titles = {name: k(dict(info), None).title() for name, k in KINDS.items()}
    assert titles[VIEW.name] == "view, ?/lmdb" and titles[chs.CAFFE_LAYOUT.name] == "clickhere caffe_datum"


def test_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        validate(str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="not a kpdata dataset"):
        validate(str(tmp_path))
    (tmp_path / "kpdata_info.json").write_text(json.dumps({"record": "something_else", "layout": "x", "splits": {}}))
    with pytest.raises(UsageError, match="record 'something_else' \\(layout 'x'\\), not a kind this validator knows"):
        validate(str(tmp_path))


def test_unreadable_info_is_a_defect_not_a_usage_error(tmp_path):
    (tmp_path / "kpdata_info.json").write_text("{")
    report = validate(str(tmp_path))
    assert report.kind == "unreadable kpdata_info.json" and list(report.checks) == ["metadata"]
    assert report.defects[0].message.startswith("does not parse as JSON")


def test_an_hpatches_folder_alone(tmp_path):
    write_layout(tmp_path)
    report = validate(str(tmp_path))
    assert report.kind == "HPatches layout" and report.defects == [] and list(report.checks) == ["hpatches"]


def test_sequences_without_a_list_and_without_features_json(tmp_path):
    info = {"name": "s", "record": KEYPOSE_SEQUENCES, "splits": {}, "config": {}, "seed": 0, "command": "c",
            "code_version": "0"}
    (tmp_path / "kpdata_info.json").write_text(json.dumps(info))
    (tmp_path / "stats.json").write_text(json.dumps({"counts": {"records_written": 3}, "failures": {"total": 0},
                                                     "failure_rate": 0.0}))
    (tmp_path / "errors").mkdir()
    (tmp_path / "errors" / "failures.jsonl").write_text("")
    hp = tmp_path / "hp"
    write_layout(hp)
    report = validate(str(tmp_path), hpatches=str(hp))
    assert report.kind == "KeyPose sequence folders"
    assert [(d.check, d.file, d.message) for d in report.defects] == [
        ("metadata", "kpdata_info.json", "has no 'sequences' list")]
    assert list(report.checks) == ["metadata", "sequences", "invariants", "hpatches", "errors"]
    assert report.checks["metadata"].notes == ["kpdata_info.json, stats.json read"]
