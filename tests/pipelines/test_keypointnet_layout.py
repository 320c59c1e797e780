"""``render_shapenet --layout keypointnet`` end to end: the dataset folder KeypointNet's main.py
reads, its parser (TensorFlow, in a subprocess), and the geometry of the pairs checked against
independent references (the original's projection / unprojection code paths, trimesh bounds,
re-rendered depth)."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import trimesh

from kpdata import demo
from kpdata.mesh import load_mesh
from pipelines import keypointnet, render_shapenet
from renderers import create_renderer
from schemas import example_proto
from schemas.dataset import records
from schemas.keypointnet import decode_pair
from tests.schemas.test_keypointnet_schema import tf_parse

CORE = {"img0", "img1", "mv0", "mvi0", "mv1", "mvi1"}


def pairs(out_dir):
    return [decode_pair(raw) for _, raw in records.iter_records(str(out_dir))]


def record_files(out_dir):
    return sorted(f for f in os.listdir(out_dir) if f.endswith(".tfrecord"))


def lines(path):
    with open(path) as f:
        return [x.strip() for x in f]


def projection(out_dir):
    # main.py's Transformer.__read_projection_matrix / __get_matrix
    with open(os.path.join(out_dir, "projection.txt")) as f:
        return np.array([[float(y) for y in x.strip().split(" ")] for x in f])


def original_pixels(mv, p, xyz, w, h):
    """main.py: row vectors times mv^T, u = -f X / Z, v = -f Y / Z, and meshgrid's pixel centres
    (x = (i + 0.5) / (w / 2) - 1, y = -((j + 0.5) / (h / 2) - 1)) solved for (i, j)."""
    xyzw = np.c_[xyz, np.ones(len(xyz))] @ np.asarray(mv, np.float64).reshape(4, 4).T
    ndc = -p[0, 0] * xyzw[:, :2] / xyzw[:, 2:3]
    return np.stack([(ndc[:, 0] + 1) * (w / 2) - 0.5, (1 - ndc[:, 1]) * (h / 2) - 0.5], axis=1)


def original_unproject(depth, p):
    """main.py's meshgrid + Transformer.unproject for every pixel with depth: (N, 4) OpenGL camera
    points and their (row, col)."""
    h, w = depth.shape
    r = np.arange(0.5, w, 1) / (w / 2) - 1
    ranx, rany = np.meshgrid(r, -np.arange(0.5, h, 1) / (h / 2) + 1)
    rows, cols = np.nonzero(depth > 0)
    z = -depth[rows, cols].astype(np.float64)
    u, v = ranx[rows, cols], rany[rows, cols]
    pinv_t = np.diag([1 / p[0, 0], 1 / p[1, 1], 1, 1])
    pts = np.stack([-u * z, -v * z, z, np.ones_like(z)], axis=1) @ pinv_t
    return pts, rows, cols


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, gl):
    out = tmp_path_factory.mktemp("kpn_demo")
    assert render_shapenet.run(["--layout", "keypointnet", "--pairs_per_model", "3", "--roll", "--seed", "2",
                                "--output_dir", str(out), "--preview", "4"]) == 0
    return out


@pytest.fixture(scope="module")
def chair_run(fixtures, tmp_path_factory, gl):
    out = tmp_path_factory.mktemp("kpn_chair")
    assert render_shapenet.run([
        "--layout", "keypointnet", "--shapenet_dir", os.path.join(fixtures, "shapenet_core_v2"),
        "--keypoints", os.path.join(fixtures, "keypointnet_annotations", "chair.json"),
        "--pairs_per_model", "6", "--perturb", "0.3", "--seed", "1", "--output_dir", str(out), "--preview", "0"]) == 0
    return out


@pytest.fixture(scope="module")
def core_run(tmp_path_factory, gl):
    out = tmp_path_factory.mktemp("kpn_core")
    assert render_shapenet.run(["--layout", "keypointnet", "--synsets", "motorbike", "--pairs_per_model", "2",
                                "--extras", "none", "--output_dir", str(out), "--preview", "0"]) == 0
    return out


def test_dataset_folder_is_what_main_py_reads(demo_run):
    files = record_files(demo_run)
    assert len(files) == 4  # one per demo model
    names = {os.path.splitext(f)[0] for f in files}
    train, dev, test = (lines(demo_run / f"{s}.txt") for s in ("train", "dev", "test"))
    assert sorted(train + dev + test) == sorted(names) and dev and test  # disjoint, complete, non-empty
    job = [x.split() for x in lines(demo_run / "job.txt")]
    assert sorted(j[0] for j in job) == sorted(names)
    assert all(f"{j[1]}_{j[2]}" == j[0] and len(j[1]) == 8 for j in job)
    p = projection(demo_run)
    assert p.shape == (4, 4) and p[0, 0] == p[1, 1] == pytest.approx(1 / np.tan(np.radians(2.75)))
    info = records.load_info(str(demo_run))
    assert info["record"] == "keypointnet_pair" and info["config"]["fov"] == 5.5
    for f in files:  # each file holds one model's pairs, sorted by key
        recs = pairs_of_file(demo_run / f)
        assert {f"{r['synset']}_{r['model_id']}.tfrecord" for r in recs} == {f}
        assert [r["key"] for r in recs] == sorted(r["key"] for r in recs) and len(recs) == 3
    recs = pairs(demo_run)
    assert len(recs) == 12 and len({r["key"] for r in recs}) == 12
    assert (demo_run / "preview.png").exists()


def test_tensorflow_parses_every_record_with_main_pys_spec(demo_run, chair_run, core_run):
    paths = [str(d / f) for d in (demo_run, chair_run, core_run) for f in record_files(d)]
    parsed = tf_parse(paths)
    ours = [r for d in (demo_run, chair_run, core_run) for f in record_files(d)
            for r in pairs_of_file(d / f)]
    assert len(parsed) == len(ours) == 12 + 6 + 2
    for got, rec in zip(parsed, ours):
        for k in ("mv0", "mvi0", "mv1", "mvi1"):
            np.testing.assert_array_equal(np.float32(got[k]).reshape(4, 4), rec[k])
        assert got["img0_alpha_sum"] == pytest.approx(rec["img0"][..., 3].sum() / 255, rel=1e-6)
        assert got["img1_alpha_sum"] > 500  # the object fills much of the frame


def pairs_of_file(path):
    from schemas import tfrecord
    with open(path, "rb") as f:
        return [decode_pair(raw) for raw in tfrecord.read_records(f, str(path))]


def test_extras_none_writes_exactly_the_original_features(core_run):
    for _, raw in records.iter_records(str(core_run)):
        assert set(example_proto.parse_example(raw).features.feature) == CORE


def test_matrices_images_and_camera_distance(demo_run, chair_run):
    for r in pairs(demo_run) + pairs(chair_run):
        for v in (0, 1):
            mv, mvi, img = r[f"mv{v}"], r[f"mvi{v}"], r[f"img{v}"]
            assert mv.dtype == np.float32 and img.shape == (128, 128, 4) and img.dtype == np.uint8
            np.testing.assert_allclose(mvi.astype(np.float64) @ mv, np.eye(4), atol=1e-5)
            assert abs(np.linalg.norm(mvi[:3, 3]) - 30) <= 0.5  # camera centre from the object centre
            alpha = img[..., 3]
            assert set(np.unique(alpha)) <= {0, 255}
            assert np.all(img[alpha == 0] == 0)  # black, transparent background
            ys, xs = np.nonzero(alpha)
            extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
            assert 40 <= extent <= 128 and xs.min() > 0 and ys.min() > 0 and xs.max() < 127 and ys.max() < 127


def test_object_frame_is_centred_and_scaled(chair_run, fixtures):
    obj = os.path.join(fixtures, "shapenet_core_v2", "03001627", "88382b877be91b2a572f8e1c1caad99e",
                       "models", "model_normalized.obj")
    bounds = trimesh.load(obj, force="scene", process=False).bounds
    rec = pairs(chair_run)[0]
    np.testing.assert_allclose(rec["object/center"], bounds.mean(axis=0), atol=1e-6)
    assert rec["object/scale"] == pytest.approx(2 / np.max(bounds[1] - bounds[0]), rel=1e-6)
    with open(os.path.join(fixtures, "keypointnet_annotations", "chair.json")) as f:
        annotations = json.load(f)
    entry = next(e for e in annotations if e["model_id"] == "88382b877be91b2a572f8e1c1caad99e")
    kps = sorted((k["semantic_id"], k["xyz"]) for k in entry["keypoints"])
    xyz = (np.array([k[1] for k in kps]) - rec["object/center"]) * rec["object/scale"]
    np.testing.assert_allclose(rec["keypoints/xyz"], xyz, atol=1e-5)
    assert rec["keypoints/names"] == [str(k[0]) for k in kps] and len(kps) == 10


@pytest.mark.parametrize("which", ["demo", "chair"])
def test_keypoint_uv_is_the_projection_through_mv_and_projection_txt(which, demo_run, chair_run):
    out = demo_run if which == "demo" else chair_run
    p = projection(out)
    n_visible = 0
    for r in pairs(out):
        assert len(r["keypoints/names"]) >= 10
        for v in (0, 1):
            uv = original_pixels(r[f"mv{v}"], p, r["keypoints/xyz"], 128, 128)
            np.testing.assert_allclose(r[f"keypoints/uv{v}"], uv, atol=0.5)
            n_visible += int(r[f"keypoints/visible{v}"].sum())
        # A point seen in view 0, carried into camera 1 by mv1 @ mvi0, lands on its view-1 pixel.
        seen = r["keypoints/visible0"].astype(bool)
        cam0 = np.c_[r["keypoints/xyz"][seen], np.ones(seen.sum())] @ r["mv0"].T.astype(np.float64)
        cam1 = cam0 @ (r["mv1"].astype(np.float64) @ r["mvi0"]).T
        uv1 = original_pixels(np.eye(4), p, cam1[:, :3], 128, 128)
        np.testing.assert_allclose(uv1, r["keypoints/uv1"][seen], atol=0.5)
    assert n_visible > 0.3 * sum(2 * len(r["keypoints/names"]) for r in pairs(out))


def _rerender(out_dir, synset_model):
    """The pairs of one model rendered again from the run's configuration, with depth."""
    info = records.load_info(str(out_dir))
    cfg = {k: tuple(map(tuple, v)) if k == "splits" else tuple(v) if isinstance(v, list) else v
           for k, v in info["config"].items()}
    config = keypointnet.PairConfig(**cfg)
    root = demo.demo_shapenet_dir() if config.shapenet_dir == "demo" else config.shapenet_dir
    model = next(m for m in keypointnet.shapenet.scan(root) if m.key == synset_model)
    mesh, center, scale = keypointnet.normalized_mesh(load_mesh(model.obj_path))
    kps = keypointnet.KeypointSource(config.keypoints or None).lookup(model.synset, model.model_id, model.model_dir)
    renderer = create_renderer(*config.image_size)
    handle = renderer.prepare(mesh)
    try:
        task = keypointnet.PairTask(model, "train", config.pairs_per_model)
        return list(keypointnet.render_pairs(renderer, handle, task, config, center, scale, kps.names, kps.xyz))
    finally:
        renderer.release(handle)
        renderer.close()


@pytest.mark.parametrize("which", ["demo", "chair"])
def test_alpha_is_the_depth_silhouette_and_view_0_maps_into_view_1(which, demo_run, chair_run):
    out = demo_run if which == "demo" else chair_run
    p = projection(out)
    stored = pairs(out)
    model = f"{stored[0]['synset']}/{stored[0]['model_id']}"
    redone = _rerender(out, model)
    stored = [r for r in stored if r["key"].startswith(model + "/")]
    assert [r["key"] for r in stored] == [x["key"] for x in redone]
    for rec, pair in zip(stored, redone):
        r0, r1 = pair["renders"]
        for v, rr in ((0, r0), (1, r1)):
            # alpha != 0 exactly where the depth of the same render is != 0
            np.testing.assert_array_equal(rec[f"img{v}"][..., 3] > 0, rr["depth"] > 0)
        pts0, _, _ = original_unproject(r0["depth"], p)
        cam1 = pts0 @ (rec["mv1"].astype(np.float64) @ rec["mvi0"]).T
        uv1 = original_pixels(np.eye(4), p, cam1[:, :3], 128, 128)
        col, row = np.floor(uv1[:, 0] + 0.5).astype(int), np.floor(uv1[:, 1] + 0.5).astype(int)
        inside = (col >= 0) & (col < 128) & (row >= 0) & (row < 128)
        sil1 = cv2.dilate((rec["img1"][..., 3] > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        # Every surface point seen in view 0 projects into view 1's silhouette (occluded or not) ...
        on = np.zeros(len(col), bool)
        on[inside] = sil1[row[inside], col[inside]]
        assert on.mean() > 0.995, on.mean()
        # ... and where view 1 sees it, at view 1's depth.
        d1 = np.zeros(len(col))
        d1[inside] = r1["depth"][row[inside], col[inside]]
        agree = np.abs(-cam1[:, 2] - d1) < 0.05
        assert agree.mean() > (0.6 if which == "chair" else 0.2), agree.mean()


def test_same_seed_is_byte_identical(demo_run, tmp_path):
    assert render_shapenet.run(["--layout", "keypointnet", "--pairs_per_model", "3", "--roll", "--seed", "2",
                                "--output_dir", str(tmp_path), "--preview", "4",
                                "--direct_num_workers", "2"]) == 0
    for f in record_files(demo_run) + ["projection.txt", "train.txt", "dev.txt", "test.txt", "job.txt"]:
        assert (tmp_path / f).read_bytes() == (demo_run / f).read_bytes(), f


def test_default_command_finishes_with_16_pairs_per_demo_model(tmp_path, monkeypatch, gl):
    monkeypatch.chdir(tmp_path)
    assert render_shapenet.run(["--layout", "keypointnet"]) == 0
    out = tmp_path / "kpdata_out"
    assert len(record_files(out)) == 4 and len(pairs(out)) == 64
    img = cv2.imread(str(out / "preview.png"))
    assert img is not None and img.shape[1] > 1000  # pairs side by side


def test_preview_command_draws_pairs(demo_run, tmp_path):
    from pipelines import preview
    path = tmp_path / "p.png"
    assert preview.run([str(demo_run), "--num", "2", "--output", str(path)]) == 0
    img = cv2.imread(str(path))
    assert img is not None and img.shape[1] == 2 * 256 + 3 * 8  # one pair per row: two 256 px tiles


@pytest.mark.parametrize("argv,message", [
    (["--layout", "keypointnet", "--focal", "100"], "does not take --focal"),
    (["--layout", "keypointnet", "--views_per_model", "3"], "does not take --views_per_model"),
    (["--layout", "keypointnet", "--format", "lmdb"], "writes TFRecord files"),
    (["--layout", "keypointnet", "--image_size", "128x96"], "needs square images"),
    (["--layout", "keypointnet", "--splits", "train=0.5,val=0.5"], "splits are train, dev and test"),
    (["--layout", "keypointnet", "--fov", "0"], "--fov must be in"),
    (["--layout", "keypointnet", "--pairs_per_model", "0"], "--pairs_per_model must be > 0"),
    (["--fov", "5"], "--layout view does not take --fov"),
    (["--roll"], "--layout view does not take --roll"),
])
def test_bad_flags_exit_with_a_message(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit):
        render_shapenet.run([*argv, "--output_dir", str(tmp_path)])
    assert message in capsys.readouterr().err


def test_foreign_files_are_refused_and_overwrite_leaves_only_this_run(tmp_path, gl, capsys):
    """KeypointNet trains on every .tfrecord of its folder: a folder with other files is refused, a
    rerun with other models needs --overwrite, which leaves only this run's record files."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.tfrecord").write_bytes(b"")
    args = ["--layout", "keypointnet", "--pairs_per_model", "1", "--preview", "0", "--output_dir", str(out)]
    assert render_shapenet.run(args) == 2
    assert "mine.tfrecord" in capsys.readouterr().err and (out / "mine.tfrecord").exists()
    os.remove(out / "mine.tfrecord")
    assert render_shapenet.run(args) == 0
    assert len(record_files(out)) == 4
    assert render_shapenet.run([*args, "--synsets", "bus"]) == 2
    assert "another configuration (synsets: [] -> [\"02924116\"])" in capsys.readouterr().err
    assert len(record_files(out)) == 4
    assert render_shapenet.run([*args, "--synsets", "bus", "--overwrite"]) == 0
    assert record_files(out) == ["02924116_724f7432f87f0cf689ec5636e9b7d52e.tfrecord"]
    listed = [x for s in ("train", "dev", "test") for x in lines(out / f"{s}.txt")]
    assert listed == ["02924116_724f7432f87f0cf689ec5636e9b7d52e"]


def test_bad_model_is_a_dead_letter_and_the_rest_is_written(tmp_path, gl):
    root = tmp_path / "shapenet"
    shutil.copytree(demo.demo_shapenet_dir(), root)
    broken = next((root / demo.CAR).iterdir())
    (broken / "model.obj").write_text("# no geometry\n")
    out = tmp_path / "out"
    args = ["--layout", "keypointnet", "--shapenet_dir", str(root), "--pairs_per_model", "2", "--preview", "0",
            "--output_dir", str(out)]
    assert render_shapenet.run(args) == 1  # 1 model of 4 failed: above the 5 % default
    failures = [json.loads(x) for x in (out / "errors" / "failures.jsonl").read_text().splitlines()]
    assert [(f["key"], f["error"]) for f in failures] == [(f"{demo.CAR}/{broken.name}", "empty_mesh")]
    assert len(record_files(out)) == 3 and broken.name not in " ".join(record_files(out))
    listed = [x for s in ("train", "dev", "test") for x in lines(out / f"{s}.txt")]
    assert len(listed) == 3 and not any(broken.name in x for x in listed)
    assert render_shapenet.run([*args, "--max_failure_rate", "0.3"]) == 0
