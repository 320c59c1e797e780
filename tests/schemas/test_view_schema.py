"""The view schema: round trips, validation messages, depth coding, the TFRecord container, and
TensorFlow's own parser reading what we write (in a subprocess: TensorFlow must not share a
process with the GL tests)."""
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from schemas import tfrecord
from schemas.features import SchemaError
from schemas.view import VIEW, decode_depth, decode_view, encode_depth, make_view_record


def _record(k=3, h=12, w=16, seed=7):
    rng = np.random.default_rng(seed)
    depth = np.where(rng.random((h, w)) > 0.5, rng.uniform(1.5, 3.0, (h, w)), 0).astype(np.float32)
    return make_view_record(
        key="02958343/abc/v000001", synset="02958343", model_id="abc", seed=seed,
        rgba=rng.integers(0, 256, (h, w, 4), dtype=np.uint8), depth=depth,
        K=np.array([[100, 0, 7.5], [0, 100, 5.5], [0, 0, 1.0]]), cam_T_obj=np.eye(4),
        viewpoint=[10, 20, 3, 2.5], names=[f"kp{i}" for i in range(k)], uv=rng.uniform(0, 10, (k, 2)),
        z=rng.uniform(1, 2, k), xyz=rng.normal(size=(k, 3)), visible=rng.random(k) > 0.5)


def test_round_trip():
    rec = _record()
    out = decode_view(VIEW.encode(rec))
    np.testing.assert_array_equal(out["image/encoded"], rec["image/encoded"])
    np.testing.assert_array_equal(out["mask/encoded"], rec["mask/encoded"])
    np.testing.assert_array_equal(out["depth/encoded"], rec["depth/encoded"])
    assert out["keypoints/names"] == rec["keypoints/names"]
    np.testing.assert_array_equal(out["keypoints/uv"], rec["keypoints/uv"].reshape(-1, 2))
    np.testing.assert_array_equal(out["keypoints/visible"], rec["keypoints/visible"])
    assert out["key"] == rec["key"] and out["seed"] == 7 and out["image/height"] == 12
    assert out["camera/cam_T_obj"].shape == (4, 4)


def test_encoding_is_deterministic():
    assert VIEW.encode(_record()) == VIEW.encode(_record())


def test_zero_keypoints():
    out = decode_view(VIEW.encode(_record(k=0)))
    assert out["keypoints/names"] == [] and out["keypoints/uv"].shape == (0, 2)


@pytest.mark.parametrize("field,value,message", [
    ("camera/K", np.zeros(8, np.float32), r"camera/K: expected shape \(9\), got \(8,\)"),
    ("keypoints/visible", np.zeros(3, np.float32), "keypoints/visible: expected .* int64"),
    ("keypoints/z", np.zeros(4, np.float32), "keypoints/z has K=4 but keypoints/names has K=3"),
    ("keypoints/uv", np.zeros(5, np.float32), "not a multiple of 2"),
    ("image/encoded", np.zeros((12, 16, 3), np.uint8), r"image/encoded: expected shape \(H, W, 4\), got \(12, 16, 3\)"),
    ("depth/encoded", np.zeros((12, 16), np.float32), "expected .* uint16 image, got"),
    ("viewpoint", np.array([1, 2, np.nan, 4], np.float32), "non-finite"),
])
def test_wrong_values_are_rejected_with_a_message_naming_the_field(field, value, message):
    rec = _record()
    rec[field] = value
    with pytest.raises(SchemaError, match=message):
        VIEW.encode(rec)


def test_missing_and_extra_fields():
    rec = _record()
    del rec["seed"]
    rec["bogus"] = 1
    with pytest.raises(SchemaError, match=r"missing fields \['seed'\], unexpected fields \['bogus'\]"):
        VIEW.encode(rec)


def test_depth_coding_precision_and_zero():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 7.3, (50, 60))
    depth[::7, ::5] = 0
    codes, scale = encode_depth(depth)
    back = decode_depth(codes, scale)
    hit = depth > 0
    assert np.all((back > 0) == hit)
    assert np.max(np.abs(back[hit] - depth[hit])) <= scale / 2 + 1e-6
    assert np.max(np.abs(back[hit] - depth[hit]) / depth[hit]) < 1e-4
    assert codes.max() <= 65535 and codes.dtype == np.uint16


def test_tfrecord_container_round_trip_and_corruption():
    buf = io.BytesIO()
    recs = [b"", b"abc", os.urandom(1000)]
    tfrecord.write_records(buf, recs)
    assert list(tfrecord.read_records(io.BytesIO(buf.getvalue()))) == recs
    damaged = bytearray(buf.getvalue())
    damaged[16 + 12 + 1] ^= 0xFF  # inside the data of the second record
    with pytest.raises(tfrecord.CorruptRecordError, match="shard.tfrecord: bad data checksum"):
        list(tfrecord.read_records(io.BytesIO(bytes(damaged)), "shard.tfrecord"))
    with pytest.raises(tfrecord.CorruptRecordError, match="truncated"):
        list(tfrecord.read_records(io.BytesIO(buf.getvalue()[:-3])))


def test_tensorflow_parses_our_tfrecords(tmp_path):
    """TensorFlow's TFRecordDataset and parse_single_example read our container and Examples."""
    import importlib.util
    assert importlib.util.find_spec("tensorflow"), "TensorFlow is a dependency of the project"
    recs = [_record(k=k, seed=k) for k in (0, 2, 3)]
    path = tmp_path / "x.tfrecord"
    with open(path, "wb") as f:
        tfrecord.write_records(f, [VIEW.encode(r) for r in recs])
    script = textwrap.dedent(f"""
        import json, tensorflow as tf
        spec = {{
            "key": tf.io.FixedLenFeature([], tf.string),
            "seed": tf.io.FixedLenFeature([], tf.int64),
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "depth/encoded": tf.io.FixedLenFeature([], tf.string),
            "camera/K": tf.io.FixedLenFeature([9], tf.float32),
            "keypoints/names": tf.io.VarLenFeature(tf.string),
            "keypoints/uv": tf.io.VarLenFeature(tf.float32),
            "keypoints/visible": tf.io.VarLenFeature(tf.int64),
        }}
        out = []
        for raw in tf.data.TFRecordDataset({str(path)!r}):
            ex = tf.io.parse_single_example(raw, spec)
            img = tf.io.decode_png(ex["image/encoded"], channels=4)
            dep = tf.io.decode_png(ex["depth/encoded"], dtype=tf.uint16)
            out.append({{"key": ex["key"].numpy().decode(), "seed": int(ex["seed"]),
                        "image": img.numpy().tolist(), "depth": dep.numpy()[..., 0].tolist(),
                        "K": ex["camera/K"].numpy().tolist(),
                        "names": [n.decode() for n in tf.sparse.to_dense(ex["keypoints/names"]).numpy()],
                        "uv": tf.sparse.to_dense(ex["keypoints/uv"]).numpy().tolist(),
                        "visible": tf.sparse.to_dense(ex["keypoints/visible"]).numpy().tolist()}})
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stderr[-3000:]
    parsed = json.loads(res.stdout.strip().splitlines()[-1])
    assert len(parsed) == 3
    for p, r in zip(parsed, recs):
        assert p["key"] == r["key"] and p["seed"] == r["seed"]
        np.testing.assert_array_equal(np.array(p["image"], np.uint8), r["image/encoded"])
        np.testing.assert_array_equal(np.array(p["depth"], np.uint16), r["depth/encoded"])
        np.testing.assert_allclose(p["K"], r["camera/K"])
        assert p["names"] == r["keypoints/names"]
        np.testing.assert_allclose(p["uv"], r["keypoints/uv"])
        assert p["visible"] == r["keypoints/visible"].tolist()


def test_features_json_describes_every_field():
    d = VIEW.describe()
    assert [f["name"] for f in d["fields"]] == [f.name for f in VIEW.fields]
    uv = next(f for f in d["fields"] if f["name"] == "keypoints/uv")
    assert uv["dims"] == ["K"] and uv["stride"] == 2 and uv["dtype"] == "float32"
    json.dumps(d)
