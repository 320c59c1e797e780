"""render_shapenet / render_stereo --mesh_dir: a nested folder of GLB, PLY and OBJ files, one with
sidecar keypoints; its keypoints must project exactly where an independent projection puts them."""
import json
import os

import cv2
import numpy as np
import pytest
import trimesh

from kpdata.sources import meshes
from pipelines import render_shapenet
from schemas.dataset.records import iter_records
from schemas.view import decode_view

SMALL = ["--image_size", "240x135", "--focal", "262.5", "--preview", "0"]

# The OBJ's box: 200 x 100 x 50 units (millimetres, say) centred at (300, 40, -120).
BOX_EXTENT = np.array([200.0, 100.0, 50.0])
BOX_CENTRE = np.array([300.0, 40.0, -120.0])


def _box_keypoints() -> dict:
    """Face centres of the box (on the surface, away from every edge), in the file's frame."""
    h = BOX_EXTENT / 2
    return {"top": (BOX_CENTRE + [0, h[1], 0]).tolist(), "front": (BOX_CENTRE + [h[0], 0, 0]).tolist(),
            "left": (BOX_CENTRE + [0, 0, -h[2]]).tolist(), "right": (BOX_CENTRE + [0, 0, h[2]]).tolist(),
            "back_top": (BOX_CENTRE + [-h[0] / 2, h[1], h[2] / 3]).tolist()}


@pytest.fixture(scope="module")
def mesh_tree(tmp_path_factory) -> str:
    """root/vehicles/cars/cube.glb (a node transform), root/ring.ply (top level), root/chair/part/seat.obj
    (+ seat.keypoints.json)."""
    root = tmp_path_factory.mktemp("meshes")
    os.makedirs(root / "vehicles" / "cars")
    os.makedirs(root / "chair" / "part")
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box((1.0, 0.6, 2.0)), transform=trimesh.transformations.translation_matrix(
        (0.5, 0.0, 0.2)))
    scene.export(str(root / "vehicles" / "cars" / "cube.glb"))
    trimesh.creation.annulus(0.3, 0.5, 0.2).export(str(root / "ring.ply"))
    box = trimesh.creation.box(BOX_EXTENT)
    box.apply_translation(BOX_CENTRE)
    box.export(str(root / "chair" / "part" / "seat.obj"))
    with open(root / "chair" / "part" / "seat.keypoints.json", "w") as f:
        json.dump(_box_keypoints(), f)
    return str(root)


def test_catalog_names_and_categories(mesh_tree):
    models = {m.key: m for m in meshes.scan(mesh_tree)}
    assert sorted(models) == ["03001627/chair--part--seat", "object/ring", "vehicles/vehicles--cars--cube"]
    assert models["03001627/chair--part--seat"].keypoints_path.endswith("seat.keypoints.json")
    assert models["object/ring"].keypoints_path == ""


def test_file_to_model_z_up():
    """+Z up: the file's +Z becomes +Y; the box is centred with a unit diagonal."""
    T = meshes.file_to_model(np.array([[0.0, 0.0, 0.0], [2.0, 4.0, 8.0]]), "z")
    corners = np.array([[0, 0, 0, 1], [2, 4, 8, 1]], dtype=float) @ T.T
    lo, hi = corners[:, :3].min(axis=0), corners[:, :3].max(axis=0)
    np.testing.assert_allclose(hi - lo, np.array([2.0, 8.0, 4.0]) / np.sqrt(84.0))
    np.testing.assert_allclose(lo + hi, 0.0, atol=1e-12)
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], [0, 1.0 / np.sqrt(84.0), 0])


def test_mesh_dir_renders_every_model_and_projects_sidecar_keypoints(mesh_tree, tmp_path, gl):
    rc = render_shapenet.run(["--mesh_dir", mesh_tree, "--views_per_model", "4", "--output_dir", str(tmp_path),
                              *SMALL])
    assert rc == 0
    recs = [decode_view(raw) for _, raw in iter_records(str(tmp_path))]
    by_model = {}
    for r in recs:
        by_model.setdefault((r["synset"], r["model_id"]), []).append(r)
    assert sorted(by_model) == [("03001627", "chair--part--seat"), ("object", "ring"),
                                ("vehicles", "vehicles--cars--cube")]
    assert all(len(v) == 4 for v in by_model.values())
    for r in recs:  # every view shows its model
        assert (np.asarray(r["mask/encoded"]) > 0).sum() > 50, r["key"]

    # Independent reference: the sidecar points, moved as documented (centre of the file's box,
    # unit diagonal, +Y up kept), projected by OpenCV with each record's camera.
    kp = _box_keypoints()
    names = sorted(kp)
    bounds = trimesh.load(os.path.join(mesh_tree, "chair", "part", "seat.obj"), force="mesh").bounds
    centre, diag = bounds.mean(axis=0), np.linalg.norm(bounds[1] - bounds[0])
    xyz_model = (np.array([kp[n] for n in names]) - centre) / diag
    seen_visible = 0
    for r in by_model[("03001627", "chair--part--seat")]:
        order = [[str(x, "utf-8") if isinstance(x, bytes) else x for x in r["keypoints/names"]].index(n)
                 for n in names]
        np.testing.assert_allclose(np.asarray(r["keypoints/xyz"])[order], xyz_model, atol=1e-6)
        T = np.asarray(r["camera/cam_T_obj"], dtype=np.float64)
        rvec, _ = cv2.Rodrigues(T[:3, :3])
        uv, _ = cv2.projectPoints(xyz_model, rvec, T[:3, 3], np.asarray(r["camera/K"], dtype=np.float64), None)
        np.testing.assert_allclose(np.asarray(r["keypoints/uv"], dtype=np.float64)[order], uv.reshape(-1, 2), atol=1e-3)
        seen_visible += int(np.asarray(r["keypoints/visible"]).sum())
    assert seen_visible > 0
    for key in (("object", "ring"), ("vehicles", "vehicles--cars--cube")):
        assert all(len(r["keypoints/names"]) == 0 for r in by_model[key])


def test_shapenet_dir_given_a_mesh_file_points_to_mesh_dir(mesh_tree, tmp_path):
    with pytest.raises(SystemExit) as e:
        render_shapenet.run(["--shapenet_dir", os.path.join(mesh_tree, "ring.ply"), "--output_dir", str(tmp_path)])
    assert str(e.value).startswith("error: ") and "--mesh_dir" in str(e.value)


def test_typo_synset_suggests_the_close_name(tmp_path):
    with pytest.raises(SystemExit) as e:
        render_shapenet.run(["--synsets", "chiar", "--output_dir", str(tmp_path)])
    assert str(e.value).startswith("error: ") and "did you mean chair (03001627)" in str(e.value)


def test_mesh_dir_in_the_other_layouts_and_render_stereo(mesh_tree, tmp_path, gl):
    """keypointnet writes a record file per model; clickhere renders the model whose category folder
    is one of its classes (chair; its views are dropped: no keypoint of Click-Here's chair classes)
    and dead-letters the others; render_stereo renders the model with
    keypoints and dead-letters those without."""
    from pipelines import render_stereo

    kpn = tmp_path / "kpn"
    assert render_shapenet.run(["--layout", "keypointnet", "--mesh_dir", mesh_tree, "--pairs_per_model", "2",
                                "--image_size", "64x64", "--preview", "0", "--output_dir", str(kpn)]) == 0
    assert sorted(f for f in os.listdir(kpn) if f.endswith(".tfrecord")) == [
        "03001627_chair--part--seat.tfrecord", "object_ring.tfrecord", "vehicles_vehicles--cars--cube.tfrecord"]

    ch = tmp_path / "ch"
    render_shapenet.run(["--layout", "clickhere", "--mesh_dir", mesh_tree, "--views_per_model", "2",
                         "--image_size", "64x64", "--preview", "0", "--max_failure_rate", "1", "--output_dir", str(ch)])
    with open(ch / "errors" / "failures.jsonl") as f:
        failed = {json.loads(line)["key"].split("/")[0] for line in f}
    assert failed == {"object", "vehicles"}
    with open(ch / "stats.json") as f:  # the chair renders; its box keypoints are none of Click-Here's chair classes
        assert json.load(f)["counts"]["views_dropped_no_keypoint"] == 2

    st = tmp_path / "stereo"
    render_stereo.run(["--mesh_dir", mesh_tree, "--frames", "2", "--image_size", "160x120", "--preview", "0",
                       "--max_failure_rate", "1", "--output_dir", str(st)])
    assert os.path.isdir(st / "chair_0" / "texture_0_pose_0")
    with open(st / "errors" / "failures.jsonl") as f:
        assert {json.loads(line)["error"] for line in f} == {"no_keypoints"}
