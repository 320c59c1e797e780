"""training.metrics against scipy, and training.spec (parse plans, split lists) - no TensorFlow."""
import json
import os
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from schemas.view import VIEW
from training import metrics, spec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from training_synthetic import write_keypointnet_folder, write_view_dataset


def test_angle2dcm_is_matlab_zyx_passive():
    rng = np.random.default_rng(0)
    ang = rng.uniform(-np.pi, np.pi, (20, 3))
    ours = metrics.angle2dcm(*ang.T)
    # MATLAB's passive ZYX dcm is the transpose of the active intrinsic ZYX rotation.
    ref = Rotation.from_euler("ZYX", ang).as_matrix().transpose(0, 2, 1)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_geodesic_and_r4cnn_distances():
    rng = np.random.default_rng(1)
    a, b = Rotation.random(30, random_state=2), Rotation.random(30, random_state=3)
    theta = (a.inv() * b).magnitude()
    np.testing.assert_allclose(metrics.geodesic_distance(a.as_matrix(), b.as_matrix()), theta, atol=1e-7)
    np.testing.assert_allclose(metrics.r4cnn_distance(a.as_matrix(), b.as_matrix()), theta / np.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(metrics.angular_distance(a.as_matrix(), b.as_matrix()), theta, atol=1e-6)
    assert rng is not None


def test_viewpoint_metrics_average_over_categories():
    gt = np.array([[10, 5, 0], [20, 5, 0], [30, 5, 0], [40, 5, 0]], float)
    pred = gt.copy()
    pred[0, 0] += 90  # one car wrong by 90 degrees of azimuth
    m = metrics.viewpoint_metrics(pred, gt, ["car", "car", "bus", "bus"])
    assert m["by_category"]["car"]["acc_pi6"] == 0.5 and m["by_category"]["bus"]["acc_pi6"] == 1.0
    assert m["acc_pi6"] == 0.75 and m["acc_pi6_all"] == 0.75
    assert m["by_category"]["car"]["med_err"] == pytest.approx(45.0, abs=1e-6)
    r = metrics.viewpoint_metrics(pred, gt, ["car", "car", "bus", "bus"], r4cnn=True)
    assert r["by_category"]["car"]["med_err"] == pytest.approx(45.0 / np.sqrt(2), abs=1e-4)


def test_procrustes_recovers_rotation_like_scipy():
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=(5, 10, 3))
    rot = Rotation.random(5, random_state=5)
    x1 = np.einsum("bij,bnj->bni", rot.as_matrix(), x0) + rng.normal(size=(5, 1, 3))
    np.testing.assert_allclose(metrics.procrustes_rotation(x0, x1), rot.as_matrix(), atol=1e-9)
    noisy = x1 + rng.normal(scale=0.05, size=x1.shape)
    for b in range(5):
        ref, _ = Rotation.align_vectors(noisy[b] - noisy[b].mean(0), x0[b] - x0[b].mean(0))
        np.testing.assert_allclose(metrics.procrustes_rotation(x0[b], noisy[b]), ref.as_matrix(), atol=1e-6)
    m = metrics.relative_pose_metrics(np.broadcast_to(np.eye(3), (5, 3, 3)), rot.as_matrix())
    assert m["angular_error_mean"] == pytest.approx(np.degrees(rot.magnitude()).mean(), abs=1e-6)


def test_decode_heatmaps_subpixel_and_pck():
    h = w = 16
    stride = 2
    true = np.array([[7.3, 11.6], [20.2, 3.9]])  # input pixels (u, v)
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    logits = np.zeros((1, h, w, 2))
    for c, (u, v) in enumerate(true):
        cu, cv = (u + 0.5) / stride - 0.5, (v + 0.5) / stride - 0.5
        logits[0, :, :, c] = -0.5 * ((jj - cu) ** 2 + (ii - cv) ** 2) / 1.0 ** 2
    pred = metrics.decode_heatmaps(logits, stride)
    np.testing.assert_allclose(pred[0], true, atol=0.1)
    m = metrics.keypoint_metrics(pred + [[[0, 0], [3, 0]]], true[None], np.ones((1, 2), bool), [40.0], [2.0])
    assert m["pck@0.05"] == 0.5 and m["pck@0.1"] == 1.0  # errors ~0 and ~3 px; thresholds 2 and 4
    assert m["mean_px_error"] == pytest.approx(2 * np.mean(np.linalg.norm(pred[0] + [[0, 0], [3, 0]] - true, axis=1)))


def test_parse_plan_follows_the_schema():
    plan = spec.parse_plan(VIEW)
    assert set(plan) == {f.name for f in VIEW.fields}
    assert plan["image/encoded"].image == (4, "uint8") and plan["depth/encoded"].image == (1, "uint16")
    assert plan["camera/K"] == spec.ParseEntry("camera/K", "float32", (9,))
    assert plan["keypoints/uv"].shape is None and plan["keypoints/uv"].stride == 2
    assert plan["keypoints/visible"].dtype == "int64" and plan["keypoints/names"].dtype == "string"
    assert plan["key"].shape == () and plan["seed"] == spec.ParseEntry("seed", "int64", ())
    with pytest.raises(KeyError, match="schema 'view' has no field"):
        spec.parse_plan(VIEW, ["nope"])
    assert spec.find_schema("view") is VIEW
    with pytest.raises(KeyError, match="no schema for record type 'bogus'"):
        spec.find_schema("bogus")


def test_sources(tmp_path):
    src = spec.load_source(write_view_dataset(str(tmp_path / "v"), models=3, views=2, test_models=1))
    assert src.record == "view" and src.format == "tfrecord" and sorted(src.splits) == ["test", "train"]
    assert src.num_examples == {"test": 2, "train": 4}
    kn = spec.load_source(write_keypointnet_folder(str(tmp_path / "k"), models=4, pairs=1))
    assert kn.record == "keypointnet" and kn.projection[0] == pytest.approx(2 * 90 / 64)
    assert [os.path.basename(p) for p in kn.splits["test"]] == ["m000.tfrecord"]
    assert [os.path.basename(p) for p in kn.splits["train"]] == ["m002.tfrecord", "m003.tfrecord"]
    with open(tmp_path / "v" / "kpdata_info.json", encoding="utf-8") as f:
        info = json.load(f)
    os.remove(tmp_path / "v" / info["splits"]["test"]["shards"][0]["file"])
    with pytest.raises(FileNotFoundError, match="listed in .* but missing"):
        spec.load_source(str(tmp_path / "v"))
    with pytest.raises(FileNotFoundError, match="neither kpdata_info.json"):
        spec.load_source(str(tmp_path))


def test_keypose_set_and_plans_of_lists_with_fixed_trailing_dims(tmp_path):
    from schemas.keypose import KEYPOSE

    plan = spec.parse_plan(KEYPOSE, ["keys_uvd_L", "targets_keys_uvd_R", "to_world_L", "img_R"])
    assert plan["keys_uvd_L"] == spec.ParseEntry("keys_uvd_L", "float32", None, reshape=(-1, 4))
    assert plan["targets_keys_uvd_R"].reshape == (5, -1, 4) and plan["to_world_L"].shape == (4, 4)
    assert plan["img_R"].image == (3, "uint8")  # KeyPose's opaque B, G, R PNGs
    # KeyPose's dset_dir: tfset.pbtxt lists the record files (the folder itself or its tfrecords/)
    rec = tmp_path / "set" / "tfrecords"
    rec.mkdir(parents=True)
    for name in ("0000.tfrecord", "0001.tfrecord", "0002.tfrecord"):
        (rec / name).write_bytes(b"")
    (rec / "tfset.pbtxt").write_text('name: "s"\ntrain: "0000.tfrecord"\ntrain: "0001.tfrecord"\nval: "0002.tfrecord"\n')
    for d in (tmp_path / "set", rec):
        src = spec.load_source(str(d))
        assert src.record == "keypose" and src.format == "tfrecord"
        assert {k: [os.path.basename(p) for p in v] for k, v in src.splits.items()} == {
            "train": ["0000.tfrecord", "0001.tfrecord"], "val": ["0002.tfrecord"]}
    (rec / "0002.tfrecord").unlink()
    with pytest.raises(FileNotFoundError, match="tfset.pbtxt: lists files that do not exist"):
        spec.load_source(str(rec))


def test_keypose_metrics_against_stereo_geometry():
    f, cx, cy, b = 400.0, 378.0, 212.0, 0.12
    # rectified stereo: [u, v, d, 1] -> [(u - cx), (v - cy), f, d / b] ~ (X, Y, Z)
    q = np.array([[1, 0, 0, -cx], [0, 1, 0, -cy], [0, 0, 0, f], [0, 0, 1 / b, 0]])
    xyz = np.array([[[0.1, -0.05, 0.6], [-0.2, 0.1, 0.8]]])
    z = xyz[..., 2]
    uvd = np.stack([f * xyz[..., 0] / z + cx, f * xyz[..., 1] / z + cy, f * b / z], -1)
    np.testing.assert_allclose(metrics.uvd_to_world(q[None], uvd), xyz, atol=1e-12)
    moved = xyz + [[[0.0, 0.0, 0.01], [0.0, 0.03, 0.0]]]  # 1 cm and 3 cm off
    mz = moved[..., 2]
    pred = np.stack([f * moved[..., 0] / mz + cx, f * moved[..., 1] / mz + cy, f * b / mz], -1)
    m = metrics.keypose_metrics(pred, uvd, q[None])
    assert m["mae_world"] == pytest.approx(0.02, abs=1e-9) and m["mae_2cm"] == 50.0
    assert m["mae_disp"] == pytest.approx(np.abs(pred[..., 2] - uvd[..., 2]).mean())
    assert m["mae_uv"] == pytest.approx(np.linalg.norm(pred[..., :2] - uvd[..., :2], axis=-1).mean())
