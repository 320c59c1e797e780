"""gen_homography_pairs end to end: any photo folder, stored homographies, determinism, dead
letters, HPatches export, metadata; TensorFlow parses the records (in a subprocess)."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from kpdata.kp2d import hpatches
from pipelines import gen_homography_pairs
from schemas.dataset.records import iter_records, load_info
from schemas.kp2d import KP2D_PAIR, decode_pair
from schemas.dataset import names

ROOT = pathlib.Path(__file__).resolve().parents[2]


def records(out_dir):
    return [decode_pair(raw) for _, raw in iter_records(str(out_dir))]


def _scene(w, h, seed):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(img, (5, 5), 1.5)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """JPEG and PNG of several sizes, a greyscale one, a corrupt one, one in a sub-folder."""
    d = tmp_path_factory.mktemp("photos")
    cv2.imwrite(str(d / "wide.jpg"), _scene(500, 200, 1))
    cv2.imwrite(str(d / "small.png"), _scene(64, 48, 2))
    cv2.imwrite(str(d / "grey.JPEG"), cv2.cvtColor(_scene(300, 400, 3), cv2.COLOR_BGR2GRAY))
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    os.makedirs(d / "sub")
    cv2.imwrite(str(d / "sub" / "deep.png"), _scene(640, 480, 4))
    return d


@pytest.fixture(scope="module")
def clean_run(photo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    rc = gen_homography_pairs.run(["--input_dir", str(photo_dir), "--recursive", "--photometric", "none",
                                   "--pairs_per_image", "3", "--output_dir", str(out / "ds"), "--seed", "3",
                                   "--hpatches_out", str(out / "hp"), "--max_failure_rate", "0.5"])
    assert rc == 0
    return out


def test_records_dead_letters_and_metadata(clean_run):
    recs = records(clean_run / "ds")
    keys = sorted(r["key"] for r in recs)
    assert keys == sorted(f"{p}/p{i:04d}" for p in ("wide.jpg", "small.png", "grey.JPEG", "sub/deep.png")
                          for i in range(3))
    for r in recs:
        assert r["image/encoded"].shape == r["image_aug/encoded"].shape == (240, 320, 3)
        assert (r["image/height"], r["image/width"], r["seed"]) == (240, 320, 3)
    grey = next(r for r in recs if r["image_path"] == "grey.JPEG")
    assert (grey["source/width"], grey["source/height"]) == (300, 400)
    img = grey["image/encoded"].astype(int)
    assert np.array_equal(img[..., 0], img[..., 1])  # greyscale converted to 3 equal channels
    errors = (clean_run / "ds" / names.ERRORS_DIR / names.FAILURES_FILE).read_text()
    (failure,) = [json.loads(line) for line in errors.splitlines()]
    assert failure["key"] == "broken.jpg" and failure["error"] == "truncated_image"
    assert failure["path"].endswith("broken.jpg") and failure["stage"] == "read"
    stats = json.loads((clean_run / "ds" / names.STATS).read_text())
    assert stats["counts"] == {"images": 5, "pairs_planned": 15, "images_failed": 1, "records_written": 12,
                               "hpatches_sequences": 8}
    assert stats["failure_rate"] == pytest.approx(0.2)
    info = load_info(str(clean_run / "ds"))
    assert info["record"] == "kp2d_pair" and info["config"]["image_size"] == [320, 240]
    assert info["features"] == json.loads(json.dumps(KP2D_PAIR.describe()))
    assert json.loads((clean_run / "ds" / names.FEATURES).read_text())["content"]["features"]["homography"] == {
        "pythonClassName": "tensorflow_datasets.core.features.tensor_feature.Tensor",
        "tensor": {"shape": {"dimensions": ["3", "3"]}, "dtype": "float32", "encoding": "none"}}


def test_stored_homographies_acceptance(clean_run):
    """Acceptance: a pixel grid mapped with the stored (normalised) homography equals
    cv2.perspectiveTransform through the stored pixel homography within 1e-3 px; the warped image
    warped back onto the photo gives NCC > 0.95 inside the valid region."""
    for r in records(clean_run / "ds"):
        hn, hp = r["homography"].astype(np.float64), r["homography/pixels"].astype(np.float64)
        w, h = 320, 240
        ys, xs = np.mgrid[0:h:5, 0:w:5]
        grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        n = np.stack([2 * grid[:, 0] / (w - 1) - 1, 2 * grid[:, 1] / (h - 1) - 1, np.ones(len(grid))], 1) @ hn.T
        n = n[:, :2] / n[:, 2:]
        ours = np.stack([(n[:, 0] + 1) / 2 * (w - 1), (n[:, 1] + 1) / 2 * (h - 1)], 1)
        ref = cv2.perspectiveTransform(grid[None], hp)[0]
        assert np.abs(ours - ref).max() < 1e-3
        back = cv2.warpPerspective(r["image_aug/encoded"], hp, (w, h))
        valid = cv2.erode(cv2.warpPerspective(np.ones((h, w), np.uint8), hp, (w, h)), np.ones((5, 5))) > 0
        a, b = back[valid].astype(float), r["image/encoded"][valid].astype(float)
        a, b = a - a.mean(), b - b.mean()
        assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) > 0.95, r["key"]


def test_hpatches_export(clean_run):
    seqs = hpatches.read_layout(str(clean_run / "hp"))
    assert sorted(s.name for s in seqs) == sorted(f"{k}_{n}" for k in "iv" for n in ("wide", "small", "grey",
                                                                                   "sub_deep"))
    for s in seqs:
        for k in range(2, 7):
            img1, imgk, h = hpatches.load_pair(s, k)
            assert img1.shape == imgk.shape == (240, 320, 3)
            if s.kind == "i":
                np.testing.assert_array_equal(h, np.eye(3))
            else:
                moved = cv2.warpPerspective(img1, h, (320, 240))
                a, b = moved.astype(float), imgk.astype(float)
                a, b = a - a.mean(), b - b.mean()
                assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) > 0.95


def test_same_seed_same_bytes_and_augmentation_changes_pairs(photo_dir, tmp_path):
    args = ["--input_dir", str(photo_dir), "--pairs_per_image", "2", "--preview", "0", "--max_failure_rate", "0.5"]
    outs = []
    for name, extra in (("a", []), ("b", ["--direct_num_workers=2"]), ("c", ["--seed", "1"])):
        assert gen_homography_pairs.run(args + extra + ["--output_dir", str(tmp_path / name)]) == 0
        outs.append((tmp_path / name / "kp2d_pairs-train.tfrecord-00000-of-00001").read_bytes())
    assert outs[0] == outs[1] and outs[0] != outs[2]
    recs = records(tmp_path / "a")
    assert len(recs) == 6  # 3 readable photos at top level (no --recursive), 2 pairs each
    # KP2D's photometric augmentation: the stored photo is no longer the plain resize
    plain = cv2.resize(cv2.imread(str(photo_dir / "wide.jpg"))[..., ::-1], (320, 240), interpolation=cv2.INTER_AREA)
    r = next(r for r in recs if r["image_path"] == "wide.jpg")
    assert np.abs(r["image/encoded"].astype(int) - plain).mean() > 3


def test_exit_status_and_usage_errors(photo_dir, tmp_path):
    base = ["--input_dir", str(photo_dir), "--pairs_per_image", "1", "--preview", "0"]
    assert gen_homography_pairs.run(base + ["--output_dir", str(tmp_path / "x")]) == 1  # 1 of 4 failed > 0.01
    (tmp_path / "empty").mkdir()
    assert gen_homography_pairs.run(["--input_dir", str(tmp_path / "empty"), "--output_dir", str(tmp_path / "y")]) == 2
    with pytest.raises(SystemExit):
        gen_homography_pairs.run(base + ["--patch_ratio", "0.95"])
    with pytest.raises(SystemExit):
        gen_homography_pairs.run(base + ["--no_such_flag", "1"])


def test_default_run_and_preview(tmp_path, monkeypatch):
    """No arguments: the built-in demo photos; the preview sheet is written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KPDATA_CACHE", str(tmp_path / "cache"))
    assert gen_homography_pairs.run([]) == 0
    assert len(records(tmp_path / "kpdata_out")) == 24
    sheet = cv2.imread(str(tmp_path / "kpdata_out" / "preview.png"))
    assert sheet is not None and sheet.shape[0] > 300


def test_tensorflow_parses_the_records(clean_run):
    shard = str(clean_run / "ds" / "kp2d_pairs-train.tfrecord-00000-of-00001")
    script = textwrap.dedent(f"""
        import json, tensorflow as tf
        from schemas.kp2d import KP2D_PAIR
        spec = {{"key": tf.io.FixedLenFeature([], tf.string),
                 "image_aug/encoded": tf.io.FixedLenFeature([], tf.string),
                 "homography": tf.io.FixedLenFeature([9], tf.float32),
                 "homography/pixels": tf.io.FixedLenFeature([9], tf.float32)}}
        out = []
        for raw in tf.data.TFRecordDataset({shard!r}):
            ex = tf.io.parse_single_example(raw, spec)
            img = tf.io.decode_png(ex["image_aug/encoded"])
            out.append({{"key": ex["key"].numpy().decode(), "shape": img.shape.as_list(),
                         "sum": int(tf.reduce_sum(tf.cast(img, tf.int64))),
                         "h": ex["homography"].numpy().tolist(), "hp": ex["homography/pixels"].numpy().tolist()}})
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stderr[-3000:]
    parsed = {p["key"]: p for p in json.loads(res.stdout.strip().splitlines()[-1])}
    recs = records(clean_run / "ds")
    assert len(parsed) == len(recs)
    for r in recs:
        p = parsed[r["key"]]
        assert p["shape"] == [240, 320, 3] and p["sum"] == int(r["image_aug/encoded"].astype(np.int64).sum())
        np.testing.assert_array_equal(np.float32(p["h"]), r["homography"].reshape(9))
        np.testing.assert_array_equal(np.float32(p["hp"]), r["homography/pixels"].reshape(9))


