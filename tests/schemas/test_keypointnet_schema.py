"""The keypointnet_pair record: round trip, and KeypointNet's own parser spec (main.py, formats.md
§1.2) reading it with TensorFlow (in a subprocess: TensorFlow must stay out of this process)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from schemas import tfrecord
from schemas.features import SchemaError
from schemas.keypointnet import (
    KEYPOINTNET_PAIR,
    KEYPOINTNET_PAIR_CORE,
    decode_pair,
    make_pair_record,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The parser of KeypointNet's main.py (create_input_fn), as TF2 spells it.
TF_PARSE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    spec = {"img0": tf.io.FixedLenFeature([], tf.string), "img1": tf.io.FixedLenFeature([], tf.string),
            "mv0": tf.io.FixedLenFeature([16], tf.float32), "mvi0": tf.io.FixedLenFeature([16], tf.float32),
            "mv1": tf.io.FixedLenFeature([16], tf.float32), "mvi1": tf.io.FixedLenFeature([16], tf.float32)}
    out = []
    for path in sys.argv[1:]:
        for raw in tf.data.TFRecordDataset([path]):
            fs = tf.io.parse_single_example(raw, spec)
            rec = {"file": path}
            for k in ("img0", "img1"):
                img = tf.image.decode_png(fs[k], 4)
                img = tf.cast(img, tf.float32) / 255
                img.set_shape([128, 128, 4])
                rec[k + "_alpha_sum"] = float(tf.reduce_sum(img[..., 3]).numpy())
                rec[k + "_rgb_sum"] = float(tf.reduce_sum(img[..., :3]).numpy())
            for k in ("mv0", "mvi0", "mv1", "mvi1"):
                rec[k] = fs[k].numpy().tolist()
            rec["lr0"] = float(fs["mv0"][0].numpy())
            out.append(rec)
    print(json.dumps(out))
""")


def tf_parse(paths):
    """Parse TFRecord files with main.py's spec in a TensorFlow subprocess; one dict per record."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", TF_PARSE, *paths], capture_output=True, text=True, timeout=300,
                         env=env, cwd=ROOT, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _record(extras=True, k=3, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (128, 128, 4), dtype=np.uint8)
    mv = np.eye(4)
    mv[:3, 3] = (0.1, -0.2, -30.0)
    ex = None
    if extras:
        ex = {"key": "03001627/abc/p000001", "synset": "03001627", "model_id": "abc", "seed": 4,
              "viewpoint0": [1, 2, 3, 30], "viewpoint1": [4, 5, 6, 30], "object/center": [0.1, 0.2, 0.3],
              "object/scale": 2.5, "keypoints/names": [str(i) for i in range(k)], "keypoints/xyz": rng.normal(size=(k, 3)),
              "keypoints/uv0": rng.uniform(0, 128, (k, 2)), "keypoints/visible0": rng.random(k) > 0.5,
              "keypoints/uv1": rng.uniform(0, 128, (k, 2)), "keypoints/visible1": rng.random(k) > 0.5}
    return make_pair_record(img0=img, img1=img[::-1].copy(), mv0=mv, mv1=mv @ np.diag([-1, 1, -1, 1.0]), extras=ex)


def test_round_trip_with_and_without_extras():
    rec = _record()
    out = decode_pair(KEYPOINTNET_PAIR.encode(rec))
    np.testing.assert_array_equal(out["img0"], rec["img0"])
    np.testing.assert_array_equal(out["mv1"], rec["mv1"].reshape(4, 4))
    np.testing.assert_allclose(out["mvi0"] @ out["mv0"], np.eye(4), atol=1e-5)
    assert out["keypoints/uv1"].shape == (3, 2) and out["keypoints/names"] == ["0", "1", "2"]
    assert out["key"] == "03001627/abc/p000001" and out["seed"] == 4
    core = decode_pair(KEYPOINTNET_PAIR_CORE.encode(_record(extras=False)))
    assert set(core) == {"img0", "img1", "mv0", "mvi0", "mv1", "mvi1"}


def test_unannotated_model_has_zero_keypoints():
    out = decode_pair(KEYPOINTNET_PAIR.encode(_record(k=0)))
    assert out["keypoints/xyz"].shape == (0, 3) and out["keypoints/names"] == []


def test_wrong_shapes_are_named():
    rec = _record()
    rec["img1"] = rec["img1"][..., :3]
    with pytest.raises(SchemaError, match=r"img1: expected shape \(H, W, 4\)"):
        KEYPOINTNET_PAIR.encode(rec)
    rec = _record()
    rec["keypoints/visible1"] = rec["keypoints/visible1"][:2]
    with pytest.raises(SchemaError, match="keypoints/visible1 has K=2"):
        KEYPOINTNET_PAIR.encode(rec)


def test_keypointnets_parser_reads_our_records(tmp_path):
    recs = [_record(), _record(extras=False, seed=1)]
    path = tmp_path / "x.tfrecord"
    with open(path, "wb") as f:
        tfrecord.write_records(f, [KEYPOINTNET_PAIR.encode(recs[0]), KEYPOINTNET_PAIR_CORE.encode(recs[1])])
    parsed = tf_parse([str(path)])
    assert len(parsed) == 2
    for rec, got in zip(recs, parsed):
        for k in ("mv0", "mvi0", "mv1", "mvi1"):
            np.testing.assert_array_equal(np.float32(got[k]), rec[k])
        assert got["img0_alpha_sum"] == pytest.approx(rec["img0"][..., 3].sum() / 255, rel=1e-5)
        assert got["lr0"] == rec["mv0"][0]
