"""Tests for kpdata.demo: the built-in ShapeNet-v1-layout demo set (meshes, textures, keypoints)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
import trimesh

from kpdata import demo

EXPECTED_NAMES = {
    "02958343": ["left_front_wheel", "left_back_wheel", "right_front_wheel", "right_back_wheel",
                 "upper_left_windshield", "upper_right_windshield", "upper_left_rearwindow",
                 "upper_right_rearwindow", "left_front_light", "right_front_light",
                 "left_back_trunk", "right_back_trunk"],
    "02924116": ["body_back_left_lower", "body_back_left_upper", "body_back_right_lower",
                 "body_back_right_upper", "body_front_left_upper", "body_front_right_upper",
                 "body_front_left_lower", "body_front_right_lower", "left_back_wheel",
                 "left_front_wheel", "right_back_wheel", "right_front_wheel"],
    "03790512": ["back_seat", "front_seat", "head_center", "headlight_center", "left_back_wheel",
                 "left_front_wheel", "left_handle_center", "right_back_wheel", "right_front_wheel",
                 "right_handle_center"],
}

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _tree(root):
    """{relative posix path: bytes} of every file under root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root).replace(os.sep, "/")] = fh.read()
    return out


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demo"))
    demo.write_demo_set(root)
    return root


def _model_dirs(root):
    return [os.path.join(root, s, m) for s, _, m in demo.DEMO_MODELS]


def _load(model_dir):
    scene = trimesh.load(os.path.join(model_dir, "model.obj"), force="scene")
    assert isinstance(scene, trimesh.Scene)
    return scene


def _keypoints(model_dir):
    with open(os.path.join(model_dir, "keypoints.json")) as f:
        return json.load(f)


def _mtl_materials(model_dir):
    """{material name: {key: value string}} parsed from model.mtl."""
    mats, cur = {}, None
    with open(os.path.join(model_dir, "model.mtl")) as f:
        for line in f:
            parts = line.split(None, 1)
            if not parts or parts[0].startswith("#"):
                continue
            if parts[0] == "newmtl":
                cur = mats.setdefault(parts[1].strip(), {})
            else:
                cur[parts[0]] = parts[1].strip()
    return mats


def _surface_distance(mesh, points):
    """Exact point-to-triangle-set distance (brute force; no rtree needed)."""
    tris = mesh.triangles
    out = []
    for p in np.asarray(points, dtype=np.float64):
        cp = trimesh.triangles.closest_point(tris, np.repeat(p[None], len(tris), axis=0))
        out.append(np.linalg.norm(cp - p, axis=1).min())
    return np.asarray(out)


# --------------------------------------------------------------------------------------------

def test_models_table():
    assert len(demo.DEMO_MODELS) == 4
    synsets = [m[0] for m in demo.DEMO_MODELS]
    assert synsets.count("02958343") == 2
    assert synsets.count("02924116") == 1
    assert synsets.count("03790512") == 1
    assert list(demo.DEMO_MODELS) == sorted(demo.DEMO_MODELS, key=lambda m: (m[0], m[2]))
    ids = [m[2] for m in demo.DEMO_MODELS]
    assert len(set(ids)) == 4
    for synset, name, model_id in demo.DEMO_MODELS:
        assert re.fullmatch(r"[0-9a-f]{32}", model_id)
        assert model_id == hashlib.md5(f"kpdata-demo-{name}".encode()).hexdigest()
    for synset, names in EXPECTED_NAMES.items():
        assert list(demo.DEMO_KEYPOINT_NAMES[synset]) == names


def test_names_match_keypoints_module():
    try:
        from kpdata.keypoints import CLICKHERE_KEYPOINTS
    except ImportError:
        pytest.skip("kpdata.keypoints.CLICKHERE_KEYPOINTS not available")
    for synset, names in demo.DEMO_KEYPOINT_NAMES.items():
        assert tuple(CLICKHERE_KEYPOINTS[synset]) == tuple(names)


def test_frame_constants():
    # ShapeNet's Y-up OBJ frame; front faces -Z; the object's own left is -X (right-handed:
    # left = up x front).
    assert demo.DEMO_UP_AXIS == (0.0, 1.0, 0.0)
    assert demo.DEMO_FRONT_AXIS == (1.0, 0.0, 0.0)
    assert demo.DEMO_LEFT_AXIS == (0.0, 0.0, -1.0)
    np.testing.assert_array_equal(np.cross(demo.DEMO_UP_AXIS, demo.DEMO_FRONT_AXIS),
                                  demo.DEMO_LEFT_AXIS)


def test_write_is_deterministic(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    dirs_a = demo.write_demo_set(a)
    dirs_b = demo.write_demo_set(b)
    assert dirs_a == sorted(dirs_a) and len(dirs_a) == 4
    assert dirs_a == [os.path.join(a, s, m) for s, _, m in sorted(
        demo.DEMO_MODELS, key=lambda m: (m[0], m[2]))]
    assert [os.path.relpath(d, a) for d in dirs_a] == [os.path.relpath(d, b) for d in dirs_b]
    ta, tb = _tree(a), _tree(b)
    assert sorted(ta) == sorted(tb)
    for rel in ta:
        assert ta[rel] == tb[rel], rel
    assert ta == demo.demo_files()
    # Writing again over an existing set leaves it byte-identical.
    demo.write_demo_set(a)
    assert _tree(a) == ta


def test_deterministic_across_processes():
    code = ("import hashlib; from kpdata.demo import demo_files; h = hashlib.sha256();\n"
            "[h.update(k.encode() + v) for k, v in demo_files().items()]; print(h.hexdigest())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    h = hashlib.sha256()
    for k, v in demo.demo_files().items():
        h.update(k.encode() + v)
    assert out == h.hexdigest()


def test_layout(demo_root):
    files = _tree(demo_root)
    for model_dir in _model_dirs(demo_root):
        rel = os.path.relpath(model_dir, demo_root).replace(os.sep, "/")
        for name in ("model.obj", "model.mtl", "keypoints.json", "images/texture0.png"):
            assert f"{rel}/{name}" in files
    # Only the synset folders at the top, only model folders below them.
    assert sorted(os.listdir(demo_root)) == sorted({m[0] for m in demo.DEMO_MODELS})


@pytest.mark.parametrize("index", range(4))
def test_obj_and_mtl_text(demo_root, index):
    model_dir = _model_dirs(demo_root)[index]
    with open(os.path.join(model_dir, "model.obj")) as f:
        lines = f.read().splitlines()
    assert "mtllib model.mtl" in lines
    used = [ln.split()[1] for ln in lines if ln.startswith("usemtl ")]
    mats = _mtl_materials(model_dir)
    assert len(used) >= 3 and set(used) <= set(mats)
    n_v = sum(ln.startswith("v ") for ln in lines)
    n_vt = sum(ln.startswith("vt ") for ln in lines)
    n_vn = sum(ln.startswith("vn ") for ln in lines)
    for ln in lines:
        if ln.startswith(("v ", "vt ", "vn ")):
            for tok in ln.split()[1:]:
                assert re.fullmatch(r"-?\d+\.\d{6}", tok), ln
        if ln.startswith("f "):
            corners = ln.split()[1:]
            assert len(corners) == 3
            for c in corners:
                v, vt, vn = (int(t) for t in c.split("/"))
                assert 1 <= v <= n_v and 1 <= vt <= n_vt and 1 <= vn <= n_vn
    for ln in lines:
        if ln.startswith("vt "):
            uv = [float(t) for t in ln.split()[1:]]
            assert all(0.0 <= t <= 1.0 for t in uv)
        if ln.startswith("vn "):
            assert abs(np.linalg.norm([float(t) for t in ln.split()[1:]]) - 1) < 1e-5
    textured = 0
    for name, m in mats.items():
        for key in ("Ka", "Kd", "Ks", "Ns", "d", "illum"):
            assert key in m, (name, key)
        if "map_Kd" in m:
            textured += 1
            assert m["map_Kd"].startswith("images/")
            img = cv2.imread(os.path.join(model_dir, m["map_Kd"]), cv2.IMREAD_UNCHANGED)
            assert img is not None and img.shape == (128, 128, 3) and img.dtype == np.uint8
            # A procedural pattern with distinct colours, not a flat fill.
            assert len(np.unique(img.reshape(-1, 3), axis=0)) >= 2
    assert textured >= 1


@pytest.mark.parametrize("index", range(4))
def test_mesh_loads_textured_closed_normalised(demo_root, index):
    model_dir = _model_dirs(demo_root)[index]
    scene = _load(model_dir)
    mats = _mtl_materials(model_dir)
    textured = {n for n, m in mats.items() if "map_Kd" in m}
    seen = set()
    for geom in scene.geometry.values():
        assert isinstance(geom.visual, trimesh.visual.texture.TextureVisuals)
        mat = geom.visual.material
        seen.add(mat.name)
        image = getattr(mat, "image", None)
        if image is None:
            image = getattr(mat, "baseColorTexture", None)
        if mat.name in textured:
            assert image is not None, mat.name
            assert image.size == (128, 128)
            assert geom.visual.uv is not None and len(geom.visual.uv) == len(geom.vertices)
        # Closed, consistently wound outward: every primitive is a closed convex solid.
        closed = geom.copy()
        closed.merge_vertices(merge_tex=True, merge_norm=True)
        assert closed.is_watertight, mat.name
        assert closed.is_winding_consistent, mat.name
        assert closed.volume > 0, mat.name
        assert (geom.area_faces > 1e-10).all(), mat.name
    assert textured <= seen
    mesh = trimesh.util.concatenate(list(scene.geometry.values()))
    lo, hi = mesh.bounds
    assert abs(np.linalg.norm(hi - lo) - 1.0) < 1e-5
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-5)


@pytest.mark.parametrize("index", range(4))
def test_keypoints(demo_root, index):
    synset, name, model_id = demo.DEMO_MODELS[index]
    model_dir = _model_dirs(demo_root)[index]
    with open(os.path.join(model_dir, "keypoints.json")) as f:
        text = f.read()
    kp = json.loads(text)
    assert sorted(kp) == sorted(EXPECTED_NAMES[synset])
    assert list(kp) == sorted(kp), "keys are written sorted"
    for v in kp.values():
        assert len(v) == 3 and all(isinstance(c, float) for c in v)
    for tok in re.findall(r"-?\d+\.\d+", text):
        assert re.fullmatch(r"-?\d+\.\d{6}", tok)

    mesh = trimesh.util.concatenate(list(_load(model_dir).geometry.values()))
    names = sorted(kp)
    xyz = np.array([kp[n] for n in names])
    dist = _surface_distance(mesh, xyz)
    assert dist.max() < 1e-5, dict(zip(names, dist))
    assert dist.max() < 1e-6

    left, front, up = (np.asarray(a) for a in
                       (demo.DEMO_LEFT_AXIS, demo.DEMO_FRONT_AXIS, demo.DEMO_UP_AXIS))
    for n in names:
        tokens = n.split("_")
        p = np.asarray(kp[n])
        if "left" in tokens:
            assert p @ left > 0 and p[2] < 0, n
            mirror = n.replace("left", "right")
            # Left and right keypoints are mirror images through the z = 0 plane.
            np.testing.assert_allclose(kp[mirror], p * [1, 1, -1], atol=1e-6)
        if "right" in tokens:
            assert p @ left < 0 and p[2] > 0, n
        if "front" in tokens and n.replace("front", "back") in kp:
            assert (p - np.asarray(kp[n.replace("front", "back")])) @ front > 0, n
        if "upper" in tokens and n.replace("upper", "lower") in kp:
            assert (p - np.asarray(kp[n.replace("upper", "lower")])) @ up > 0, n
        if n.endswith("windshield"):
            rear = np.asarray(kp[n.replace("windshield", "rearwindow")])
            assert (p - rear) @ front > 0, n
    # Wheel keypoints (hub centres) sit in the lower half of the bounding box.
    wheels = [n for n in names if n.endswith("wheel")]
    assert len(wheels) == 4
    for n in wheels:
        assert np.asarray(kp[n]) @ up < 0, n


# Keypoint clearance from mesh edges and corners (model units; the bounding-box diagonal is 1).
# Visibility is a depth test at the keypoint's rounded pixel, which flips at random for a point on
# an edge or corner (a silhouette in many views), so every keypoint lies inside one face.
FACE_INSET = 0.04  # from every edge of the keypoint's own face ...
MIN_CLEARANCE = 0.02  # ... or this much for the centre of a small face; and from any vertex / edge
WHEELS = {"left_front_wheel", "left_back_wheel", "right_front_wheel", "right_back_wheel"}
# Centres of round caps built as triangle fans around a centre vertex (wheel hubs; the
# motorbike's round headlamp): the keypoint is that fan-centre vertex by construction, in the
# middle of a flat disc, so the "no mesh vertex nearby" rule does not apply to these names.
FAN_CENTRES = WHEELS | {"headlight_center"}
# Keypoints at the centre of a face too small for FACE_INSET (lights, grips, steering head).
SMALL_FACE_CENTRES = FAN_CENTRES | {"left_front_light", "right_front_light", "head_center",
                                    "left_handle_center", "right_handle_center"}


def _feature_edges(mesh):
    """(A, B) end points (n, 3) of the mesh's real edges: every triangle edge except those shared
    by exactly two coplanar triangles (the diagonals of fan-triangulated flat polygons)."""
    tris, normals = mesh.triangles, mesh.face_normals
    edges = {}
    for fi, tri in enumerate(np.round(tris, 6)):
        for i in range(3):
            key = tuple(sorted((tuple(tri[i]), tuple(tri[(i + 1) % 3]))))
            edges.setdefault(key, []).append(fi)
    cos_flat = np.cos(np.radians(0.5))
    feat = [k for k, fs in edges.items()
            if not (len(fs) == 2 and normals[fs[0]] @ normals[fs[1]] > cos_flat)]
    return np.array([k[0] for k in feat]), np.array([k[1] for k in feat])


def _segment_distance(p, a, b):
    """Distance from point p (3,) to each segment a[i] -> b[i]."""
    ab = b - a
    t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.einsum("ij,ij->i", ab, ab), 0.0, 1.0)
    return np.linalg.norm(a + t[:, None] * ab - p, axis=1)


@pytest.mark.parametrize("index", range(4))
def test_keypoints_inside_one_face_clear_of_edges(demo_root, index):
    """Each keypoint lies inside exactly one flat face, FACE_INSET from that face's edges (the
    centre of a small face: MIN_CLEARANCE), and MIN_CLEARANCE from every mesh vertex (fan
    centres excepted, see FAN_CENTRES) and every mesh edge (wheels excepted: a hub stands just
    proud of its tyre, in front of the body's lower edge; its own cap is checked as its face)."""
    model_dir = _model_dirs(demo_root)[index]
    kp = _keypoints(model_dir)
    mesh = trimesh.util.concatenate(list(_load(model_dir).geometry.values()))
    tris, normals = mesh.triangles, mesh.face_normals
    edge_a, edge_b = _feature_edges(mesh)
    report = {}
    for name, xyz in sorted(kp.items()):
        p = np.asarray(xyz)
        cp = trimesh.triangles.closest_point(tris, np.repeat(p[None], len(tris), axis=0))
        on = np.linalg.norm(cp - p, axis=1) < 1e-6
        assert on.any(), name
        # One face: all triangles through the point are coplanar (not on a crease or corner).
        n = normals[on][0]
        assert (normals[on] @ n > 0.9999).all(), (name, normals[on])
        # The face's own edges: feature edges lying in its plane.
        in_plane = ((np.abs((edge_a - p) @ n) < 1e-5) & (np.abs((edge_b - p) @ n) < 1e-5))
        face_clear = _segment_distance(p, edge_a[in_plane], edge_b[in_plane]).min()
        edge_clear = _segment_distance(p, edge_a, edge_b).min()
        vertex_clear = np.linalg.norm(mesh.vertices - p, axis=1).min()
        report[name] = (round(face_clear, 4), round(edge_clear, 4), round(vertex_clear, 4))
        inset = MIN_CLEARANCE if name in SMALL_FACE_CENTRES else FACE_INSET
        assert face_clear >= inset, (name, report[name])
        if name not in WHEELS:
            assert edge_clear >= MIN_CLEARANCE, (name, report[name])
        if name not in FAN_CENTRES:
            assert vertex_clear >= MIN_CLEARANCE, (name, report[name])
        else:
            assert vertex_clear < 1e-6, (name, "expected a fan-centre vertex")


def test_demo_shapenet_dir(tmp_path):
    cache = str(tmp_path / "cache")
    path = demo.demo_shapenet_dir(cache)
    assert path == os.path.join(cache, demo.DEMO_DIR_NAME)
    assert _tree(path) == demo.demo_files()
    assert os.listdir(cache) == [demo.DEMO_DIR_NAME]  # no temporary leftovers

    # Idempotent: same path, untouched files.
    obj = os.path.join(path, "02958343", demo.DEMO_MODELS[1][2], "model.obj")
    stat = os.stat(obj)
    assert demo.demo_shapenet_dir(cache) == path
    assert os.stat(obj).st_mtime_ns == stat.st_mtime_ns and os.stat(obj).st_ino == stat.st_ino

    # Incomplete (a file missing) or damaged sets are regenerated.
    os.remove(obj)
    assert demo.demo_shapenet_dir(cache) == path
    assert _tree(path) == demo.demo_files()
    png = os.path.join(path, "03790512", demo.DEMO_MODELS[3][2], "images", "texture1.png")
    with open(png, "wb") as f:
        f.write(b"broken")
    assert demo.demo_shapenet_dir(cache) == path
    assert _tree(path) == demo.demo_files()
    assert os.listdir(cache) == [demo.DEMO_DIR_NAME]

    # The result is a readable ShapeNet v1 tree.
    for synset, _, model_id in demo.DEMO_MODELS:
        assert os.path.isfile(os.path.join(path, synset, model_id, "model.obj"))


def test_demo_shapenet_dir_default_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KPDATA_CACHE", str(tmp_path / "envcache"))
    path = demo.demo_shapenet_dir()
    assert path == os.path.join(str(tmp_path / "envcache"), demo.DEMO_DIR_NAME)
    assert _tree(path) == demo.demo_files()
    monkeypatch.delenv("KPDATA_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert demo.default_cache_dir() == os.path.join(str(tmp_path / "home"), ".cache", "kpdata")


def test_demo_shapenet_dir_concurrent(tmp_path):
    cache = str(tmp_path / "cache")
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(demo.demo_shapenet_dir(cache))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [os.path.join(cache, demo.DEMO_DIR_NAME)] * 4
    assert _tree(results[0]) == demo.demo_files()
    assert os.listdir(cache) == [demo.DEMO_DIR_NAME]
