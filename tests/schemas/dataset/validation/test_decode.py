"""Strict Example decoding: every way a record can disagree with its schema becomes a problem line."""
import numpy as np

from schemas import example_proto
from schemas.dataset.validation.decode import decode_strict
from schemas.features import PNGImage, Schema, Tensor, Text

SCHEMA = Schema("toy", "1.0.0", (
    Text("key"),
    Tensor("xy", shape=(None,), dims=("K",), stride=2),
    Tensor("visible", shape=(None,), dims=("K",), dtype="int64"),
    Tensor("k", shape=(3, 3)),
    PNGImage("mask", shape=(4, 5)),
))


def _record(k=2):
    return {"key": "a/b", "xy": np.arange(2 * k, dtype=np.float32), "visible": np.ones(k, np.int64),
            "k": np.eye(3, dtype=np.float32), "mask": np.zeros((4, 5), np.uint8)}


def _edit(data: bytes, fn) -> bytes:
    ex = example_proto.parse_example(data)
    fn(ex.features.feature)
    return ex.SerializeToString()


def test_a_valid_record_decodes_without_problems():
    rec, problems = decode_strict(SCHEMA, SCHEMA.encode(_record()))
    assert problems == [] and rec["key"] == "a/b" and rec["mask"].shape == (4, 5)


def test_missing_unexpected_and_optional_features():
    data = _edit(SCHEMA.encode(_record()), lambda f: (f.pop("k"), f["extra"].int64_list.value.append(1)))
    _, problems = decode_strict(SCHEMA, data)
    assert problems == ["missing features ['k']", "unexpected features ['extra']"]
    data = _edit(SCHEMA.encode(_record()), lambda f: f.pop("k"))
    assert decode_strict(SCHEMA, data, optional=("k",))[1] == []


def test_kind_count_shape_and_finite_values():
    def kind(f):
        del f["visible"].int64_list.value[:]
        f["visible"].float_list.value.extend([1.0, 1.0])
    assert decode_strict(SCHEMA, _edit(SCHEMA.encode(_record()), kind))[1] == [
        "visible: stored as float_list, the schema says int64_list"]
    assert decode_strict(SCHEMA, _edit(SCHEMA.encode(_record()), lambda f: f["k"].float_list.value.append(0.0)))[1] == [
        "k: 10 values, expected 9 (shape (3, 3))"]
    assert decode_strict(SCHEMA, _edit(SCHEMA.encode(_record()), lambda f: f["xy"].float_list.value.append(0.0)))[1] == [
        "xy: 5 values, not a multiple of 2"]
    nan = _edit(SCHEMA.encode(_record()), lambda f: f["k"].float_list.value.__setitem__(0, float("nan")))
    assert decode_strict(SCHEMA, nan)[1] == ["k: non-finite values"]
    wrong_png = _edit(SCHEMA.encode(_record()), lambda f: f["mask"].bytes_list.value.__setitem__(
        0, PNGImage("m", shape=(5, 5)).encode_array(np.zeros((5, 5), np.uint8))))
    assert decode_strict(SCHEMA, wrong_png)[1] == ["mask: shape (5, 5), expected (4, 5)"]


def test_shared_dimension_and_not_an_example():
    data = _edit(SCHEMA.encode(_record(2)), lambda f: f["visible"].int64_list.value.append(1))
    assert decode_strict(SCHEMA, data)[1] == ["visible has K=3 but xy has K=2"]
    rec, problems = decode_strict(SCHEMA, b"\xff\xff\xff")
    assert rec == {} and problems[0].startswith("not a tf.train.Example (")
