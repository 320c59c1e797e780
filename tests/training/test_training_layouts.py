"""training/ on the real outputs of the other layouts (issue 6): KeypointNet pairs written with
``--extras none``, the four Click-Here layouts (Caffe LMDBs, instance TFRecords, compact LMDB /
TFRecord with the maps rebuilt at read time) and KeyPose (render_stereo -> gen_tfrecords).

The datasets are rendered here (the test process has no TensorFlow); TensorFlow runs in one
subprocess per test. The readers are compared with the pipelines' own numpy readers
(``schemas.dataset.records.iter_instances``, ``schemas.keypose.decode_keypose``); then every new
layout trains, evaluates and (KeyPose's stereo model) exports."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipelines import gen_tfrecords, render_shapenet, render_stereo
from schemas import keypose as keypose_schema
from schemas.dataset import records
from schemas import tfrecord

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
CH = ["--layout", "clickhere", "--image_size", "320x180", "--focal", "350", "--views_per_model", "1",
      "--splits", "train=1", "--seed", "2", "--preview", "0"]
CH_LAYOUTS = {"caffe": ["--format", "lmdb"], "instances": ["--format", "tfrecord"],
              "compact_lmdb": ["--format", "lmdb", "--compact"], "compact_tfrecord": ["--format", "tfrecord", "--compact"]}


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _py(code_or_args, *args, timeout=300):
    argv = ["-c", code_or_args, *args] if isinstance(code_or_args, str) else code_or_args
    r = subprocess.run([sys.executable, *argv], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout,
                       check=False)
    assert r.returncode == 0, f"STDOUT:\n{r.stdout[-4000:]}\nSTDERR:\n{r.stderr[-4000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    out = {"kn": str(root / "kn"), "stereo": str(root / "stereo"), "keypose": str(root / "keypose")}
    assert render_shapenet.run(["--layout", "keypointnet", "--extras", "none", "--pairs_per_model", "3",
                                "--image_size", "64x64", "--preview", "0", "--output_dir", out["kn"]]) == 0
    for name, extra in CH_LAYOUTS.items():
        out[name] = str(root / name)
        assert render_shapenet.run(CH + extra + ["--output_dir", out[name]]) == 0
    assert render_stereo.run(["--synsets", "02958343", "--frames", "3", "--image_size", "320x180", "--focal", "169",
                              "--preview", "0", "--output_dir", out["stereo"]]) == 0
    assert gen_tfrecords.run(["--input", os.path.join(out["stereo"], "car_*", "texture_*_pose_*"), "--val", "car_1/*",
                              "--image_size", "160x90_fl84.5", "--preview", "0", "--output_dir", out["keypose"]]) == 0
    return out


READ = r"""
import json, sys
import numpy as np
from training import data, layouts, spec, tasks
paths, out_npz = json.loads(sys.argv[1]), sys.argv[2]
arrays, report = {}, {}
# Click-Here: every layout's instances as the reader yields them (viewpoint + keypoint map fields)
vt = tasks.ViewpointTask(categories=["car"], keypoint_map=True, classes=["x"])
for name in ("caffe", "instances", "compact_lmdb", "compact_tfrecord"):
    src = spec.load_source(paths[name])
    layout = layouts.get(src.record)
    insts = list(layout.read(src, "train", "viewpoint", shuffle=False, seed=0, repeat=False, task_obj=vt).as_numpy_iterator())
    report[name] = {"record": src.record, "n": len(insts)}
    for i in insts:
        k = f"{name}|{i['key'].decode()}"
        for f in ("image", "keypoint_pixel", "keypoint_class", "viewpoint_label", "chessboard_dt_map"):
            arrays[f"{k}|{f}"] = i[f]
    # the task's sample: category and angles from the label, one keypoint of its class
    s = next(layout.read(src, "train", "viewpoint", shuffle=False, seed=0, repeat=False, task_obj=vt)
             .map(layout.adapter("viewpoint", src)).as_numpy_iterator())
    report[name]["sample"] = {"category": s["category"].decode(), "angles": s["angles"].tolist(),
                              "classes": [c.decode() for c in s["classes"]], "uv": s["uv"].tolist(), "key": s["key"].decode()}
    # a training stream is seeded: same seed, same order; another seed, another order
    def order(seed):
        ds = layout.read(src, "train", "keypoints", shuffle=True, seed=seed, repeat=True).take(12)
        return [r["key"].decode() for r in ds.as_numpy_iterator()]
    report[name]["shuffled"] = [order(1), order(1), order(2)]
# KeyPose: the adapter's sample per record of the val split, and the stereo task's labels
src = spec.load_source(paths["keypose"])
layout = layouts.get("keypose")
ks = list(layout.read(src, "val", "keypoints", shuffle=False, seed=0, repeat=False)
          .map(layout.adapter("keypoints", src)).as_numpy_iterator())
for j, s in enumerate(ks):
    for f in ("image", "image_r", "mask", "uv", "disparity", "visible", "to_world"):
        arrays[f"keypose|{j}|{f}"] = s[f]
report["keypose"] = {"n": len(ks), "classes": [c.decode() for c in ks[0]["classes"]], "splits": sorted(src.splits)}
kt = tasks.KeypointsTask.from_source(src, image_size=32)
report["keypose"]["stereo"] = kt.stereo
inputs, labels = next(iter(data.build(src, kt, "val", batch_size=64, training=False)))
report["keypose"]["input_shape"] = list(inputs["image"].shape)
arrays["keypose|uvd_image"] = labels["uvd_image"].numpy()
# a KeyPose set read from its tfset.pbtxt alone (KeyPose's dset_dir)
alone = spec.load_source(paths["keypose"] + "/tfrecords")
report["keypose"]["tfset_splits"] = {k: len(v) for k, v in alone.splits.items()}
np.savez(out_npz, **arrays)
print(json.dumps(report))
"""


def test_readers_match_the_pipelines_own_readers(data, tmp_path):
    npz = str(tmp_path / "read.npz")
    report = json.loads(_py(READ, json.dumps(data), npz).strip().splitlines()[-1])
    got = np.load(npz)
    # Click-Here: the four layouts give the instances schemas.dataset.records.iter_instances reads
    # (the compact ones rebuilt by schemas.clickhere.expand), field by field
    ref = {r["key"]: r for r in records.iter_instances(data["caffe"], "train")}
    assert len(ref) > 10 and any(k.endswith("_r") for k in ref)
    for name in CH_LAYOUTS:
        assert report[name]["n"] == len(ref), name
        for key, r in ref.items():
            k = f"{name}|{key}"
            assert np.array_equal(got[f"{k}|image"], r["image"]), k
            assert np.array_equal(got[f"{k}|keypoint_pixel"], r["keypoint_pixel"]), k
            assert np.array_equal(got[f"{k}|keypoint_class"], r["keypoint_class"]), k
            assert np.array_equal(got[f"{k}|viewpoint_label"], r["viewpoint_label"]), k
            assert np.array_equal(got[f"{k}|chessboard_dt_map"], r["chessboard_dt_map"]), k
        s = report[name]["sample"]
        r = ref[s["key"]]
        cls = int(r["viewpoint_label"][0])
        assert s["angles"] == [float(v - 360 * cls) for v in r["viewpoint_label"][1:]]
        assert s["category"] in ("bus", "car", "motorbike") and s["classes"][0].startswith(s["category"] + "_")
        assert s["uv"] == [r["keypoint_pixel"].astype(float).tolist()]
        a, b, c = report[name]["shuffled"]
        assert a == b and a != c and len(set(a)) > 6  # (epochs mix in the shuffle buffer)
    # KeyPose: the adapter's arrays equal the schema's decoder on the same records
    info = _json(os.path.join(data["keypose"], "kpdata_info.json"))
    recs = []
    for split in ("train", "val"):
        for shard in info["splits"][split]["shards"]:
            path = os.path.join(data["keypose"], shard["file"])
            with open(path, "rb") as f:
                recs += [keypose_schema.decode_keypose(raw) for raw in tfrecord.read_records(f, path)]
    n_train = info["splits"]["train"]["num_examples"]
    val = recs[n_train:]
    kp = report["keypose"]
    assert kp["n"] == len(val) == info["splits"]["val"]["num_examples"] and kp["splits"] == ["train", "val"]
    assert kp["tfset_splits"] == {"train": len(info["splits"]["train"]["shards"]), "val": len(info["splits"]["val"]["shards"])}
    k = len(val[0]["visible_L"])
    assert kp["classes"] == [f"kp{i:03d}" for i in range(k)] and kp["stereo"] and kp["input_shape"] == [len(val), 32, 32, 6]
    for j, r in enumerate(val):
        # the records store KeyPose's B, G, R (3 channels, opaque); the adapter feeds R, G, B
        assert r["img_L"].shape[2] == 3
        assert np.array_equal(got[f"keypose|{j}|image"], r["img_L"][..., ::-1])
        assert np.array_equal(got[f"keypose|{j}|image_r"], r["img_R"][..., ::-1])
        # no mask in the records: the object box is the visible keypoints' box grown by
        # max(half its longer side, 32 px) each way
        uv = r["keys_uvd_L"][:, :2][r["visible_L"] > 0]
        lo, hi = uv.min(0), uv.max(0)
        g = max(0.5 * (hi - lo).max(), 32.0)
        ys, xs = np.mgrid[0:r["img_L"].shape[0], 0:r["img_L"].shape[1]]
        want = (xs >= lo[0] - g) & (xs <= hi[0] + g) & (ys >= lo[1] - g) & (ys <= hi[1] + g)
        assert np.array_equal(got[f"keypose|{j}|mask"], want) and want.any()
        assert np.array_equal(got[f"keypose|{j}|uv"], r["keys_uvd_L"][:, :2])
        assert np.array_equal(got[f"keypose|{j}|disparity"], r["keys_uvd_L"][:, 2])
        assert np.array_equal(got[f"keypose|{j}|visible"], r["visible_L"] > 0)
        assert np.allclose(got[f"keypose|{j}|to_world"], r["to_world_L"])
    # the stereo task's labels keep every keypoint in the original image's pixels
    assert np.allclose(got["keypose|uvd_image"], np.stack([r["keys_uvd_L"][:, :3] for r in val]), atol=1e-4)


TRAIN = r"""
import json, sys
from training import evaluate, export, train
runs = json.loads(sys.argv[1])
for model_dir, train_args, eval_args in runs:
    assert train.run(["--model_dir", model_dir, "--steps", "2", "--batch_size", "4", "--image_size", "32", *train_args]) == 0
    assert evaluate.run(["--model_dir", model_dir, *eval_args]) == 0
assert export.run(["--model_dir", runs[-1][0], "--format", "tflite"]) == 0
"""


def test_new_layouts_train_evaluate_and_export(data, tmp_path):
    m = {k: str(tmp_path / k) for k in ("kn", "vp", "kp", "keypose")}
    runs = [(m["kn"], ["--data", data["kn"], "--task", "keypointnet"], []),
            (m["vp"], ["--data", data["caffe"], "--task", "viewpoint", "--keypoint_map"], ["--r4cnn_distance"]),
            (m["kp"], ["--data", data["compact_lmdb"], "--task", "keypoints"], []),
            (m["keypose"], ["--data", data["keypose"], "--task", "keypoints"], [])]
    out = _py(TRAIN, json.dumps(runs), timeout=400)
    metrics = {k: _json(os.path.join(d, "metrics.json")) for k, d in m.items()}
    kn = metrics["kn"]
    assert kn["split"] == "test" and kn["model"]["pairs"] == kn["baseline"]["pairs"] == 3  # one test model, 3 pairs
    assert kn["baseline"]["angular_error_mean"] > 0
    vp = metrics["vp"]
    assert "has no 'test' split; evaluating 'train'" in out and vp["model"]["distance"] == "r4cnn_matrix_2norm"
    assert vp["model"]["instances"] == _json(os.path.join(data["caffe"], "kpdata_info.json"))["splits"]["train"]["num_examples"]
    assert set(vp["model"]["by_category"]) <= {"bus", "car", "motorbike"} and "acc_pi6" in vp["baseline"]
    kp = metrics["kp"]
    assert kp["model"]["keypoints_evaluated"] == vp["model"]["instances"]  # one keypoint per instance
    kpz = metrics["keypose"]
    assert kpz["split"] == "val"
    for part in ("model", "baseline"):
        assert {"mae_uv", "mae_disp", "mae_world", "mae_2cm", "pck@0.1"} <= set(kpz[part])
    # all keypoints are on the image here: KeyPose's MAE_uv is the mean pixel error
    assert abs(kpz["baseline"]["mae_uv"] - kpz["baseline"]["mean_px_error"]) < 1e-6
    check = _json(os.path.join(m["keypose"], "export", "check.json"))
    assert check["ok"] and set(check["tflite_vs_saved_model"]) == {"heatmaps", "disparity"}
