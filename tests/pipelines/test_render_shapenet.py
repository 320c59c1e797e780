"""render_shapenet end to end: real fixtures, determinism, bad input, formats, metadata."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import trimesh

from kpdata import camera, geometry
from pipelines import render_shapenet
from schemas.dataset.records import iter_records, load_info
from schemas.view import decode_view
from schemas.dataset import names

SMALL = ["--image_size", "240x135", "--focal", "262.5", "--preview", "0"]


def records(out_dir, split=None):
    return [decode_view(raw) for _, raw in iter_records(str(out_dir), split)]


def raw_records(out_dir):
    return [raw for _, raw in iter_records(str(out_dir))]


def shard_bytes(out_dir):
    info = load_info(str(out_dir))
    return {s["file"]: open(os.path.join(out_dir, s["file"]), "rb").read()
            for split in info["splits"].values() for s in split["shards"]}


@pytest.fixture(scope="module")
def v2_run(fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("v2")
    rc = render_shapenet.run([
        "--shapenet_dir", os.path.join(fixtures, "shapenet_core_v2"),
        "--keypoints", os.path.join(fixtures, "keypointnet_annotations", "chair.json"),
        "--views_per_model", "12", "--image_size", "480x360", "--focal", "500", "--seed", "5",
        "--output_dir", str(out), "--preview", "4"])
    assert rc == 0
    return out


def test_reference_viewpoint_matches_render_for_cnn(fixtures, tmp_path, gl):
    """Acceptance: the v1 chair at viewpoint 120 40 3 2.5 (row 2 of sample_viewpoints.txt),
    960x540, f = 1050: our mask vs the alpha of Render for CNN's render, IoU >= 0.95."""
    rc = render_shapenet.run([
        "--shapenet_dir", os.path.join(fixtures, "shapenet_core_v1"),
        "--viewpoints", os.path.join(fixtures, "r4cnn_demo", "sample_viewpoints.txt"),
        "--views_per_model", "all", "--image_size", "960x540", "--focal", "1050",
        "--output_dir", str(tmp_path), "--preview", "0"])
    assert rc == 0
    recs = {r["key"]: r for r in records(tmp_path)}
    assert len(recs) == 8  # 2 models x 4 rows
    rec = recs["03001627/21bfb150cfc23accb01c58badc8bbc39/v000001"]
    np.testing.assert_allclose(rec["viewpoint"], [120, 40, 3, 2.5])
    ref = cv2.imread(os.path.join(fixtures, "r4cnn_demo", "render_chair_960x540.png"), cv2.IMREAD_UNCHANGED)
    ours, theirs = rec["mask/encoded"] > 0, ref[..., 3] > 127
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert iou >= 0.95, iou
    # the rows of the file are rendered in order
    rows = np.loadtxt(os.path.join(fixtures, "r4cnn_demo", "sample_viewpoints.txt"))
    for i, row in enumerate(rows):
        np.testing.assert_allclose(recs[f"03001627/21bfb150cfc23accb01c58badc8bbc39/v{i:06d}"]["viewpoint"], row)


def test_keypoints_project_and_visible_ones_sit_on_the_surface(v2_run, gl):
    """Acceptance: uv = projection of xyz with K and cam_T_obj (1e-3 px); every visible keypoint
    lies on the mask with depth there within 1 % of its z."""
    recs = records(v2_run)
    assert len(recs) == 12
    n_visible = 0
    for r in recs:
        assert len(r["keypoints/names"]) == 10
        uv, _ = camera.project(r["camera/K"], r["camera/cam_T_obj"], r["keypoints/xyz"])
        assert np.max(np.abs(uv - r["keypoints/uv"])) < 1e-3
        for (u, v), z, vis in zip(r["keypoints/uv"], r["keypoints/z"], r["keypoints/visible"]):
            if not vis:
                continue
            n_visible += 1
            col, row = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
            assert r["mask/encoded"][row, col] == 255
            assert abs(r["depth"][row, col] - z) <= 0.01 * z
    assert n_visible > 0.4 * 12 * 10


def test_visibility_agrees_with_ray_casting(v2_run, fixtures, gl):
    """Independent check with trimesh: a keypoint marked visible is not hidden behind the mesh
    along its own ray; one marked not visible is either hidden along its ray or sits on an
    occluding contour, where its pixel centre shows the background or what lies behind."""
    scene = trimesh.load(os.path.join(fixtures, "shapenet_core_v2/03001627/88382b877be91b2a572f8e1c1caad99e/models/"
                                      "model_normalized.obj"), force="scene")
    tm = trimesh.util.concatenate(list(scene.geometry.values()))
    caster = trimesh.ray.ray_triangle.RayMeshIntersector(tm)
    kinds = {"visible": 0, "hidden": 0, "silhouette": 0}
    for r in records(v2_run):
        eye = geometry.invert_transform(r["camera/cam_T_obj"].astype(np.float64))[:3, 3]
        xyz = r["keypoints/xyz"].astype(np.float64)
        dirs = xyz - eye
        dist = np.linalg.norm(dirs, axis=1)
        locs, idx, _ = caster.intersects_location(np.repeat(eye[None], len(xyz), 0), dirs / dist[:, None],
                                                  multiple_hits=False)
        first = np.full(len(xyz), np.inf)
        first[idx] = np.linalg.norm(locs - eye, axis=1)
        for i, vis in enumerate(r["keypoints/visible"].astype(bool)):
            col, row = (int(np.floor(c + 0.5)) for c in r["keypoints/uv"][i])
            if vis:
                assert first[i] > dist[i] * (1 - 0.02), (r["key"], i)  # not clearly hidden
                kinds["visible"] += 1
            elif first[i] < dist[i] * (1 - 0.01):
                kinds["hidden"] += 1
            else:
                # Its pixel centre missed its surface: that surface must be within one pixel (the
                # keypoint is on an occluding contour), up to a borderline 2 % depth difference.
                z = r["keypoints/z"][i]
                around = r["depth"][max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
                assert np.any(np.abs(around - z) <= 0.02 * z), (r["key"], i, around, z)
                kinds["silhouette"] += 1
    assert kinds["visible"] > 60 and kinds["hidden"] > 10, kinds


def test_metadata_and_dead_letters_of_a_clean_run(v2_run):
    info = json.load(open(v2_run / names.KPDATA_INFO))
    stats = json.load(open(v2_run / names.STATS))
    features = info["features"]
    tfds_info = json.load(open(v2_run / names.DATASET_INFO))  # TFDS's DatasetInfo over the same shards
    size = os.path.getsize(v2_run / info["splits"]["train"]["shards"][0]["file"])
    assert tfds_info["splits"] == [{"name": "train", "numBytes": str(size), "shardLengths": ["12"],
                                    "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"}]
    assert json.load(open(v2_run / names.FEATURES))["content"]["features"]["keypoints/uv"]["tensor"]["shape"] == \
        {"dimensions": ["-1", "2"]}
    assert info["split_assignment"] == {"by": "model", "groups": {f"{r['synset']}/{r['model_id']}": "train"
                                                                  for r in records(v2_run)}}
    assert info["splits"]["train"]["num_examples"] == 12
    shard = info["splits"]["train"]["shards"][0]
    assert shard["file"] == "shapenet_views-train.tfrecord-00000-of-00001"
    assert shard["bytes"] == os.path.getsize(v2_run / shard["file"])
    assert info["seed"] == 5 and info["config"]["views_per_model"] == 12
    assert "--views_per_model 12" in info["command"] and info["code_version"]
    assert stats["counts"] == {"models": 1, "models_failed": 0, "records_written": 12, "views_planned": 12,
                               "models_with_keypoints": 1, "annotations_unmatched": 998}  # chair.json: 999 chairs
    assert stats["failures"]["total"] == 0 and stats["timings"]["render"] > 0
    assert [f["name"] for f in features["fields"]][:3] == ["key", "synset", "model_id"]
    assert (v2_run / "errors" / "failures.jsonl").read_text() == ""
    assert not [f for f in os.listdir(v2_run) if "incomplete" in f]
    preview = cv2.imread(str(v2_run / "preview.png"))
    assert preview is not None and preview.shape[1] > 600
    assert cv2.imread(str(v2_run / "viewpoints.png")) is not None  # what it rendered: viewpoint histograms


def test_same_seed_twice_is_byte_identical_and_workers_do_not_matter(tmp_path, gl):
    args = ["--views_per_model", "3", "--num_shards", "3", "--seed", "11", *SMALL]
    assert render_shapenet.run([*args, "--output_dir", str(tmp_path / "a")]) == 0
    assert render_shapenet.run([*args, "--output_dir", str(tmp_path / "b")]) == 0
    a, b = shard_bytes(tmp_path / "a"), shard_bytes(tmp_path / "b")
    assert len(a) == 3 and a == b
    assert render_shapenet.run([*args, "--output_dir", str(tmp_path / "c"), "--direct_num_workers=2",
                                "--direct_running_mode=multi_processing"]) == 0
    assert render_shapenet.run([*args, "--output_dir", str(tmp_path / "d"), "--direct_num_workers=1"]) == 0
    assert sorted(raw_records(tmp_path / "c")) == sorted(raw_records(tmp_path / "d")) == sorted(raw_records(tmp_path / "a"))
    keys = [r["key"] for r in records(tmp_path / "a")]
    assert len(keys) == len(set(keys)) == 12  # 4 demo models x 3 views
    # another seed gives other views
    assert render_shapenet.run([*args[:-len(SMALL) - 2], "--seed", "12", *SMALL, "--output_dir", str(tmp_path / "e")]) == 0
    assert sorted(raw_records(tmp_path / "e")) != sorted(raw_records(tmp_path / "a"))


def _bad_tree(root, demo_dir):
    """The demo models plus a corrupt OBJ, an empty mesh and a missing texture."""
    shutil.copytree(demo_dir, root)
    car = os.path.join(root, "02958343")
    good = sorted(os.listdir(car))[0]
    for name in ("corrupt", "empty", "notexture"):
        shutil.copytree(os.path.join(car, good), os.path.join(car, name))
    with open(os.path.join(car, "corrupt", "model.obj"), "wb") as f:
        f.write(b"v 1 2\nf 1 2 3 x\n\x00\xff garbage \x01")
    with open(os.path.join(car, "empty", "model.obj"), "w") as f:
        f.write("# no geometry\nmtllib model.mtl\n")
    os.remove(os.path.join(car, "notexture", "images", "texture0.png"))


def test_bad_inputs_become_one_dead_letter_line_each(tmp_path, gl):
    from kpdata import demo
    root = str(tmp_path / "shapenet")
    _bad_tree(root, demo.demo_shapenet_dir(str(tmp_path / "cache")))
    out = tmp_path / "out"
    args = ["--shapenet_dir", root, "--views_per_model", "2", *SMALL, "--output_dir", str(out)]
    assert render_shapenet.run([*args, "--max_failure_rate", "1.0"]) == 0
    lines = [json.loads(x) for x in (out / "errors" / "failures.jsonl").read_text().splitlines()]
    assert [(x["key"], x["stage"], x["error"]) for x in lines] == [
        ("02958343/corrupt", "load", "corrupt_mesh"), ("02958343/empty", "load", "empty_mesh"),
        ("02958343/notexture", "load", "missing_texture")]
    assert lines[2]["path"].endswith(os.path.join("notexture", "images", "texture0.png"))
    assert lines[0]["path"].endswith(os.path.join("corrupt", "model.obj")) and lines[0]["message"]
    models = {r["key"].rsplit("/", 1)[0] for r in records(out)}
    assert len(models) == 4 and not any(m.split("/")[1] in ("corrupt", "empty", "notexture") for m in models)
    stats = json.load(open(out / names.STATS))
    assert stats["failures"]["total"] == 3 and stats["counts"]["models_failed"] == 3
    # with the default limit, 3 failed models of 7 make the run fail
    assert render_shapenet.run([*args, "--output_dir", str(tmp_path / "out2")]) == 1


def test_lmdb_holds_the_same_records_as_tfrecord(tmp_path, gl):
    import lmdb
    args = ["--views_per_model", "2", "--synsets", "bus,motorbike", *SMALL]
    assert render_shapenet.run([*args, "--output_dir", str(tmp_path / "t")]) == 0
    assert render_shapenet.run([*args, "--format", "lmdb", "--output_dir", str(tmp_path / "l")]) == 0
    env = lmdb.open(str(tmp_path / "l" / "shapenet_views-train.lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        items = [(k.decode(), bytes(v)) for k, v in txn.cursor()]
    env.close()
    assert [k for k, _ in items] == sorted(decode_view(v)["key"] for _, v in items)
    assert sorted(v for _, v in items) == sorted(raw_records(tmp_path / "t"))
    assert len(items) == 4


def test_splits_by_model(tmp_path, gl):
    assert render_shapenet.run(["--views_per_model", "2", "--splits", "train=0.5,test=0.5", "--seed", "3",
                                *SMALL, "--output_dir", str(tmp_path)]) == 0
    train, test = records(tmp_path, "train"), records(tmp_path, "test")
    assert len(train) + len(test) == 8
    models = lambda rs: {r["model_id"] for r in rs}  # noqa: E731
    assert not models(train) & models(test)


def test_default_command_writes_kpdata_out(tmp_path, monkeypatch, gl):
    """The README's main job: no arguments, the built-in demo set, ./kpdata_out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KPDATA_CACHE", str(tmp_path / "cache"))
    assert render_shapenet.run([]) == 0
    out = tmp_path / "kpdata_out"
    recs = records(out)
    assert len(recs) == 32 and recs[0]["image/encoded"].shape == (540, 960, 4)
    assert {r["synset"] for r in recs} == {"02924116", "02958343", "03790512"}
    assert all(len(r["keypoints/names"]) >= 10 for r in recs)
    assert sum(int(r["keypoints/visible"].sum()) for r in recs) > 100
    assert (out / "preview.png").exists() and (out / "kpdata_info.json").exists()


@pytest.mark.parametrize("argv,message", [
    (["--views_per_model", "all"], "needs --viewpoints FILE"),
    (["--no_such_flag", "1"], "unrecognized arguments"),
    (["--image_size", "640"], "expected WxH"),
    (["--synsets", "spaceship"], "unknown ShapeNet synset"),
])
def test_bad_flags_exit_with_a_message(argv, message, capsys, tmp_path):
    with pytest.raises((SystemExit, ValueError)) as info:
        render_shapenet.run([*argv, "--output_dir", str(tmp_path)])
    text = str(info.value) + capsys.readouterr().err
    assert message in text


def test_missing_shapenet_dir_is_a_clear_error(tmp_path, capsys):
    assert render_shapenet.run(["--shapenet_dir", str(tmp_path / "nope"), "--output_dir", str(tmp_path)]) == 2
    assert "nope: ShapeNet folder does not exist" in capsys.readouterr().err


def test_preview_command(v2_run, tmp_path):
    from pipelines import preview
    path = tmp_path / "sheet.png"
    assert preview.run([str(v2_run), "--num", "3", "--output", str(path)]) == 0
    img = cv2.imread(str(path))
    assert img is not None and img.shape[1] > 600  # two columns of 320 px tiles for 3 views


def test_kpdata_and_schemas_import_without_beam_tensorflow_or_opengl():
    code = ("import pkgutil, importlib, sys, kpdata, schemas\n"
            "for p in (kpdata, schemas):\n"
            "    for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.'): importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'tensorflow', 'pyrender', 'OpenGL')]\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
