"""training.evaluate_hpatches: SIFT on an HPatches-layout set exported from the SUN2012 fixtures
(acceptance), ORB, the demo default, and a TensorFlow model (in a subprocess)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipelines import gen_homography_pairs
from training import evaluate_hpatches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def sun_hpatches(fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("sun")
    rc = gen_homography_pairs.run(["--input_dir", os.path.join(fixtures, "sun2012_sample"), "--pairs_per_image", "0",
                                   "--hpatches_out", str(out / "hp"), "--output_dir", str(out / "ds"),
                                   "--preview", "0"])
    assert rc == 0
    return out / "hp"


def _rows(text):
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and "Model" not in line}


def test_sift_on_sun2012_export(sun_hpatches, tmp_path, capsys):
    """Acceptance: repeatability, localisation error, C1/C3/C5 and matching score are printed,
    lie in their valid ranges, and C1 <= C3 <= C5."""
    js = tmp_path / "m.json"
    assert evaluate_hpatches.run(["--hpatches", str(sun_hpatches), "--detector", "sift",
                                  "--output_json", str(js)]) == 0
    printed = capsys.readouterr().out
    print(printed)
    rows = _rows(printed)
    assert set(rows) == {"sift k300", "sift k300 (i_)", "sift k300 (v_)"}
    pairs, rep, loc, c1, c3, c5, ms = (float(v) for v in rows["sift k300"])
    assert pairs == 18 * 2 * 5
    assert 0 < rep <= 1 and 0 <= loc <= 3 and 0 <= c1 <= c3 <= c5 <= 1 and 0 < ms <= 1
    s = json.loads(js.read_text())["all"]
    assert s["repeatability"] == pytest.approx(rep, abs=5e-4) and s["c5"] == pytest.approx(c5, abs=5e-4)
    # identity pairs: SIFT finds the same points, so C1 = 1 on the illumination sequences
    assert float(rows["sift k300 (i_)"][3]) == 1.0
    assert "tensorflow" not in sys.modules


def test_orb_and_the_demo_default(capsys):
    assert evaluate_hpatches.run(["--detector", "orb", "--sequences", "v"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert list(rows) == ["orb k300", "orb k300 (v_)"]
    _, rep, loc, c1, c3, c5, ms = (float(v) for v in rows["orb k300"])
    assert 0 < rep <= 1 and 0 <= loc <= 3 and c1 <= c3 <= c5 and 0 <= ms <= 1
    assert "tensorflow" not in sys.modules


def test_bad_layout_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "v_x").mkdir()
    assert evaluate_hpatches.run(["--hpatches", str(tmp_path)]) == 2
    assert "1.ppm" in capsys.readouterr().err


def test_a_tensorflow_model(tmp_path):
    """A SavedModel in KP2D's output convention: one candidate per 8x8 cell at the cell centre,
    score = the cell's mean gradient energy, descriptor = the cell's normalised 8x8 grey patch.
    With top_k above the cell count every cell is kept in both images, so on illumination
    sequences (identity H) repeatability is exactly 1 and the localisation error 0."""
    script = textwrap.dedent(f"""
        import sys, tensorflow as tf
        class Net(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
            def __call__(self, x):
                g = tf.reduce_mean(x, axis=3, keepdims=True)
                dy, dx = tf.image.image_gradients(g)
                energy = tf.nn.avg_pool2d(dx * dx + dy * dy, 8, 8, "VALID")
                score = energy / (tf.reduce_max(energy) + 1e-12) + 1e-3
                hc, wc = tf.shape(score)[1], tf.shape(score)[2]
                xs = tf.cast(tf.range(wc), tf.float32) * 8 + 3.5
                ys = tf.cast(tf.range(hc), tf.float32) * 8 + 3.5
                gx, gy = tf.meshgrid(xs, ys)
                coord = tf.stack([gx, gy], axis=-1)[None]
                patches = tf.nn.space_to_depth(g, 8)
                patches = patches - tf.reduce_mean(patches, axis=3, keepdims=True)
                desc = tf.math.l2_normalize(patches, axis=3)
                return {{"score": score, "coord": coord, "desc": desc}}
        tf.saved_model.save(Net(), {str(tmp_path / "net")!r})
        from training import evaluate_hpatches
        sys.exit(evaluate_hpatches.run(["--detector", {str(tmp_path / "net")!r}, "--top_k", "2000",
                                        "--output_json", {str(tmp_path / "m.json")!r}]))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KPDATA_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False,
                         cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| net k2000 |" in res.stdout
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["i"]["repeatability"] == 1.0 and m["i"]["localization_error"] == 0.0
    for key in ("repeatability", "c1", "c3", "c5", "matching_score"):
        assert 0 <= m["all"][key] <= 1
    assert m["all"]["c1"] <= m["all"]["c3"] <= m["all"]["c5"]
    assert np.isfinite(m["v"]["repeatability"]) and m["pairs"][0]["n1"] == 40 * 30
