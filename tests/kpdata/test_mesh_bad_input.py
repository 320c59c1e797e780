"""Loading meshes that are bad in ways the renderer would not survive or would draw as nothing
(issue 14, items 1, 2, 6, 10): each is one InputError naming the file and the real cause."""
import builtins
import os
import shutil

import cv2
import numpy as np
import pytest

from kpdata import demo
from kpdata.errors import InputError
from kpdata.mesh import MAX_TEXTURE_SIZE, load_mesh
from kpdata.sources import shapenet

CAR = "02958343"


@pytest.fixture
def textured(tmp_path):
    src = os.path.join(demo.demo_shapenet_dir(str(tmp_path / "cache")), CAR)
    return os.path.join(src, sorted(os.listdir(src))[0])


def _load_error(path) -> InputError:
    with pytest.raises(InputError) as e:
        load_mesh(path)
    return e.value


def test_non_utf8_folder_loads_with_its_texture_and_a_non_utf8_texture_name_is_refused(textured, tmp_path):
    raw = os.path.join(os.fsencode(str(tmp_path)), b"m\xe9")
    shutil.copytree(os.fsencode(textured), raw)
    mesh = load_mesh(os.path.join(os.fsdecode(raw), "model.obj"))  # cv2.imread crashed (exit 139) here
    images = [g.visual.material.image for g in mesh.scene.geometry.values()
              if getattr(getattr(g.visual, "material", None), "image", None) is not None]
    assert images and images[0].size == (128, 128)
    os.rename(os.path.join(raw, b"images", b"texture0.png"), os.path.join(raw, b"images", b"t\xff.png"))
    with open(os.path.join(raw, b"model.mtl"), "rb") as f:
        mtl = f.read().replace(b"texture0.png", b"t\xff.png")
    with open(os.path.join(raw, b"model.mtl"), "wb") as f:
        f.write(mtl)
    e = _load_error(os.path.join(os.fsdecode(raw), "model.obj"))
    assert e.error == "non_utf8_name" and e.path.endswith("m\\xe9/images/t\\xff.png")
    e.path.encode("utf-8")


def test_texture_larger_than_the_gl_limit(textured, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(textured, d)
    cv2.imwrite(str(d / "images" / "texture0.png"), np.zeros((1, MAX_TEXTURE_SIZE + 1, 3), np.uint8))
    e = _load_error(str(d / "model.obj"))
    assert e.error == "texture_too_large" and f"{MAX_TEXTURE_SIZE + 1}x1" in e.message and e.path.endswith("texture0.png")
    cv2.imwrite(str(d / "images" / "texture0.png"), np.zeros((1, MAX_TEXTURE_SIZE, 3), np.uint8))
    assert load_mesh(str(d / "model.obj")).num_faces > 0  # the limit itself is fine


def _obj(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_zero_area_garbage_and_faceless_files_say_what_they_are(tmp_path):
    _obj(tmp_path / "zero.obj", "v 0 0 0\nv 1 1 1\nv 2 2 2\n" + "f 1 2 3\n" * 1000)  # collinear
    e = _load_error(str(tmp_path / "zero.obj"))
    assert e.error == "degenerate_mesh" and "no face with area > 0" in e.message
    (tmp_path / "garbage.obj").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    e = _load_error(str(tmp_path / "garbage.obj"))
    assert e.error == "corrupt_mesh" and "binary" in e.message
    _obj(tmp_path / "points.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    e = _load_error(str(tmp_path / "points.obj"))
    assert e.error == "empty_mesh" and "no face ('f') lines" in e.message
    _obj(tmp_path / "ok.obj", "v 0 0 0\nv 1 1 1\nv 2 2 2\nv 0 1 0\nf 1 2 3\nf 1 2 4\n")  # one real face
    assert load_mesh(str(tmp_path / "ok.obj")).num_faces == 2


def _deny(monkeypatch, target: str, module=builtins, name="open"):
    """Make ``module.name`` raise PermissionError for ``target``, as it does for a non-root user on
    a chmod 000 file (the tests run as root, which ignores permissions)."""
    real = getattr(module, name)

    def guarded(path, *a, **k):
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", target)
        return real(path, *a, **k)
    monkeypatch.setattr(module, name, guarded)


def test_permission_problems_are_named(textured, tmp_path, monkeypatch):
    d = tmp_path / "m"
    shutil.copytree(textured, d)
    tex = os.path.normpath(str(d / "images" / "texture0.png"))
    with monkeypatch.context() as m:
        _deny(m, tex, np, "fromfile")
        e = _load_error(str(d / "model.obj"))
        assert e.error == "unreadable_texture" and "Permission denied" in e.message  # was "cannot be decoded"
    with monkeypatch.context() as m:
        _deny(m, str(d / "model.obj"))
        e = _load_error(str(d / "model.obj"))
        assert e.error == "unreadable_mesh" and "Permission denied" in e.message
    # a model folder that cannot be listed: was "no model.obj"
    empty = tmp_path / "root" / CAR / "locked"
    os.makedirs(empty)
    (model,) = shapenet.scan(str(tmp_path / "root"))
    _deny(monkeypatch, str(empty), os, "listdir")
    with pytest.raises(InputError) as e:
        shapenet.require_obj(model)
    assert e.value.error == "unreadable_model" and "Permission denied" in e.value.message


def test_non_utf8_model_folder_is_listed_printable_and_refused(tmp_path):
    os.makedirs(os.path.join(os.fsencode(str(tmp_path)), CAR.encode(), b"caf\xe9"))
    (model,) = shapenet.scan(str(tmp_path))
    assert model.model_id == "caf\\xe9" and model.key == f"{CAR}/caf\\xe9" and os.path.isdir(model.model_dir)
    with pytest.raises(InputError) as e:
        shapenet.require_obj(model)
    assert e.value.error == "non_utf8_name" and e.value.path.endswith("caf\\xe9")
