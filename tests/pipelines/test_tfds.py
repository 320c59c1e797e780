"""TensorFlow Datasets opens every TFRecord dataset kpdata writes with metadata: the default view
layout (two shards per split), Click-Here TFRecord (instances) and ``--compact`` (views), KP2D
pairs. ``tfds.builder_from_directory(DIR)`` reads TFDS's dataset_info.json / features.json
unchanged, and every record it decodes equals kpdata's own reader's, field by field, with its
shape. TensorFlow runs in a subprocess (tfds_probe.py); validate checks the same folders clean."""
import json
import os
import subprocess
import sys

import pytest

from pipelines import gen_homography_pairs, render_shapenet
from schemas.dataset import names, records
from schemas.dataset.validation import validate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(ROOT, "tests", "pipelines", "tfds_probe.py")
CLICKHERE = ["--layout", "clickhere", "--image_size", "320x180", "--focal", "300", "--views_per_model", "2",
             "--synsets", "car", "--preview", "0", "--splits", "train=0.5,test=0.5", "--format", "tfrecord"]


@pytest.fixture(scope="module")
def made(tmp_path_factory, gl):
    root = tmp_path_factory.mktemp("tfds")
    d = {k: str(root / k) for k in ("view", "clickhere", "compact", "kp2d")}
    runs = [(render_shapenet, ["--image_size", "160x120", "--focal", "180", "--views_per_model", "2", "--preview", "0",
                               "--splits", "train=0.5,test=0.5", "--num_shards", "2", "--output_dir", d["view"]]),
            (render_shapenet, CLICKHERE + ["--output_dir", d["clickhere"]]),
            (render_shapenet, CLICKHERE + ["--compact", "--output_dir", d["compact"]]),
            (gen_homography_pairs, ["--pairs_per_image", "2", "--preview", "0", "--output_dir", d["kp2d"]])]
    for module, argv in runs:
        assert module.run(argv) == 0, (module.__name__, argv)
    return d


def test_tfds_reads_every_record_as_our_reader(made):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, PROBE, *made.values()], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    for kind, folder in made.items():
        res = got[folder]
        info = records.load_info(folder)
        want = {s: v["num_examples"] for s, v in info["splits"].items()}
        assert res["splits"] == want and res["tfds_num_examples"] == want, kind
        assert all(n > 0 for n in want.values()) and res["ours_left"] == 0, kind
        assert res["mismatches"] == [], (kind, res["mismatches"][:5])
        assert validate(folder).defects == [], kind
        tfds_info = json.loads(open(os.path.join(folder, names.DATASET_INFO)).read())
        assert [s["name"] for s in tfds_info["splits"]] == sorted(want)
    shapes = {k: got[f]["shapes"] for k, f in made.items()}
    v = shapes["view"]
    h, w = 120, 160
    assert v["image/encoded"] == [[h, w, 4], [h, w, 4]] and v["mask/encoded"] == [[h, w, 1], [h, w]]
    assert v["depth/encoded"] == [[h, w, 1], [h, w]] and v["camera/K"] == [[3, 3], [3, 3]]
    assert v["camera/cam_T_obj"] == [[4, 4], [4, 4]]
    k = v["keypoints/uv"][1][0]
    assert k > 0 and v["keypoints/uv"] == [[k, 2], [k, 2]] and v["keypoints/xyz"] == [[k, 3], [k, 3]]
    assert v["keypoints/names"] == [[k], [k]] and v["keypoints/visible"] == [[k], [k]]
    assert got[made["view"]]["depth_equal"] is True
    c = shapes["clickhere"]
    assert c["image/encoded"] == [[227, 227, 3]] * 2 and c["keypoint_loc"] == [[227, 227, 1], [227, 227]]
    assert c["chessboard_dt_map"] == [[227, 227]] * 2 and c["keypoint_pixel"] == [[2], [2]]
    n = shapes["compact"]["keypoints/uv"][1][0]
    assert n > 0 and shapes["compact"]["keypoints/pixel"] == [[n, 2], [n, 2]]
    assert got[made["compact"]]["jpeg_accurate_equal"] is True
    p = shapes["kp2d"]
    assert p["homography"] == [[3, 3], [3, 3]] and p["image/encoded"][0] == p["image/encoded"][1]
