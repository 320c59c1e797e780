"""ShapeNet catalog, keypoint annotations and mesh loading (real fixtures and made-up trees)."""
import json
import os
import shutil

import numpy as np
import pytest
import trimesh

from kpdata import keypoints, mesh

from kpdata.sources import shapenet
from kpdata.errors import InputError

V1_CHAIR = "shapenet_core_v1/03001627/21bfb150cfc23accb01c58badc8bbc39"
V2_CHAIR = "shapenet_core_v2/03001627/88382b877be91b2a572f8e1c1caad99e"


def test_55_synsets_and_names():
    assert len(shapenet.SYNSETS) == 55
    assert shapenet.synset_id("chair") == "03001627"
    assert shapenet.synset_id("Motorcycle") == "03790512"
    assert shapenet.synset_id("02958343") == "02958343"
    assert all(shapenet.synset_id(n) == s for s, n in shapenet.SYNSETS.items())
    with pytest.raises(ValueError, match="unknown ShapeNet synset"):
        shapenet.synset_id("spaceship")
    with pytest.raises(ValueError, match="not one of the 55"):
        shapenet.synset_id("12345678")


def test_scan_reads_v1_and_v2_layouts(fixtures):
    v1 = shapenet.scan(os.path.join(fixtures, "shapenet_core_v1"))
    assert [(m.synset, m.version) for m in v1] == [("02691156", 1), ("03001627", 1)]
    assert v1[1].obj_path.endswith("model.obj")
    v2 = shapenet.scan(os.path.join(fixtures, "shapenet_core_v2"), ["chair"])
    assert [(m.model_id, m.version) for m in v2] == [("88382b877be91b2a572f8e1c1caad99e", 2)]
    assert v2[0].obj_path.endswith(os.path.join("models", "model_normalized.obj"))
    with pytest.raises(InputError, match="02958343"):
        shapenet.scan(os.path.join(fixtures, "shapenet_core_v1"), ["car"])


def test_textured_models_load_with_their_textures(fixtures):
    for rel in (V1_CHAIR, V2_CHAIR):
        obj, _ = shapenet.find_obj(os.path.join(fixtures, rel))
        m = mesh.load_mesh(obj)
        images = [g.visual.material.image for g in m.scene.geometry.values()
                  if getattr(g.visual.material, "image", None) is not None]
        assert images, rel
        assert m.num_faces > 1000
        assert len(mesh.referenced_textures(obj)) >= 2


def test_keypointnet_annotations_lie_on_the_v2_mesh(fixtures):
    source = keypoints.KeypointSource(os.path.join(fixtures, "keypointnet_annotations", "chair.json"))
    kp = source.lookup("03001627", "88382b877be91b2a572f8e1c1caad99e")
    assert len(kp) == 10
    assert kp.names == tuple(sorted(kp.names, key=int))
    scene = trimesh.load(os.path.join(fixtures, V2_CHAIR, "models", "model_normalized.obj"), force="scene")
    tri = trimesh.util.concatenate(list(scene.geometry.values())).triangles
    # distance to the nearest triangle, by brute force over all triangles
    d = [np.min(np.linalg.norm(trimesh.triangles.closest_point(tri, np.repeat(p[None], len(tri), 0)) - p, axis=1))
         for p in kp.xyz]
    assert max(d) < 1e-4
    assert len(source.lookup("03001627", "0" * 32)) == 0


def _write_obj(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


CUBE = "".join(f"v {x} {y} {z}\n" for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)) + \
    "f 1 3 4 2\nf 5 6 8 7\nf 1 2 6 5\nf 3 7 8 4\nf 1 5 7 3\nf 2 4 8 6\n"


def test_clickhere_keypoints_json_in_a_shapenet_layout(tmp_path):
    kdir = tmp_path / "kp" / "02958343" / "abc"
    kdir.mkdir(parents=True)
    (kdir / "keypoints.json").write_text(json.dumps({"right_back_wheel": [1, 2, 3], "left_front_wheel": [0, 0, 1],
                                                     "zz_extra": [0, 0, 0]}))
    kp = keypoints.KeypointSource(str(tmp_path / "kp")).lookup("02958343", "abc")
    assert kp.names == ("left_front_wheel", "right_back_wheel", "zz_extra")  # Click-Here order first
    np.testing.assert_array_equal(kp.xyz[1], [1, 2, 3])
    (kdir / "keypoints.json").write_text(json.dumps({"a": [0, "x", 1]}))
    with pytest.raises(InputError, match="keypoints.json"):
        keypoints.KeypointSource(str(tmp_path / "kp")).lookup("02958343", "abc")


@pytest.mark.parametrize("case,error", [
    ("corrupt", "corrupt_mesh"), ("empty", "empty_mesh"), ("nan", "nonfinite_vertices"),
    ("missing_texture", "missing_texture"), ("missing_mtl", "missing_material"), ("no_obj", "missing_obj"),
])
def test_bad_models_raise_input_errors_naming_the_file(tmp_path, case, error):
    mdir = tmp_path / "02958343" / "bad"
    obj = str(mdir / "model.obj")
    if case == "corrupt":
        os.makedirs(mdir)
        with open(obj, "wb") as f:
            f.write(b"v 0 0 0\nv 1 0 0\nf 1 2 9 banana\n\x00\xff\xfe garbage")
    elif case == "empty":
        _write_obj(obj, "# nothing here\n")
    elif case == "nan":
        _write_obj(obj, "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    elif case == "missing_texture":
        _write_obj(obj, "mtllib model.mtl\nusemtl m\nvt 0 0\nvt 1 0\nvt 0 1\n" + CUBE)
        (mdir / "model.mtl").write_text("newmtl m\nKd 1 1 1\nmap_Kd images/texture0.jpg\n")
    elif case == "missing_mtl":
        _write_obj(obj, "mtllib model.mtl\n" + CUBE)
    elif case == "no_obj":
        os.makedirs(mdir)
    models = shapenet.scan(str(tmp_path))
    assert len(models) == 1
    with pytest.raises(InputError) as info:
        mesh.load_mesh(shapenet.require_obj(models[0]))
    assert info.value.error == error
    assert str(mdir) in info.value.path
    assert str(mdir) in str(info.value)


def test_good_cube_loads(tmp_path):
    obj = str(tmp_path / "a" / "model.obj")
    _write_obj(obj, CUBE)
    m = mesh.load_mesh(obj)
    assert m.num_faces == 12
    np.testing.assert_allclose(m.bounds, [[-.5] * 3, [.5] * 3])


def test_viewpoint_file(tmp_path, fixtures):
    from kpdata.viewpoints import ViewpointTable, read_viewpoint_file
    rows = read_viewpoint_file(os.path.join(fixtures, "r4cnn_demo", "sample_viewpoints.txt"))
    assert rows.shape == (4, 4) and list(rows[1]) == [120, 40, 3, 2.5]
    bad = tmp_path / "v.txt"
    bad.write_text("10 20 0 2\n10 twenty 0 2\n")
    with pytest.raises(InputError, match="line 2"):
        ViewpointTable.from_file(str(bad))
    shutil.rmtree(tmp_path)
