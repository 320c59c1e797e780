"""A catalog of plain mesh files (``--mesh_dir``): any folder tree, one model per file.

Layout read::

    <root>/<category>/.../<name>.<ext>          one model (ext: MESH_EXTS, whatever trimesh reads)
    <root>/<category>/.../<name>.keypoints.json  optional keypoints {name: [x, y, z]} in the file's frame
    <root>/<name>.<ext>                          a model at the top: category DEFAULT_CATEGORY

Names:

* ``model_id``: the file's path relative to ``root`` without its extension, folders joined by
  ``ID_SEP`` (record keys and file names hold no ``/``), characters outside ``[A-Za-z0-9._-]``
  replaced by ``-``; two files that differ only in their extension keep it (``ring-ply``).
* ``synset`` (the category): the first folder level. A folder named like a ShapeNet synset (an
  8-digit id or a name such as ``car``, ``chair``, ``motorcycle``) takes that synset's id, so the
  layouts that know ShapeNet classes (Click-Here's 12) treat the models as that class; any other
  name is kept (``_`` and other separators become ``-``).

Frame and units (:func:`file_to_model`): meshes come in any units and either up axis, so each model
is moved into ShapeNet's model frame as ShapeNetCore v1 normalises its models: first rotated so
that the file's up axis (``up``: ``y``, the glTF convention and the default; or ``z``, common for
scans, CAD, PLY and STL) becomes +Y, then centred at its bounding-box centre and scaled so that the
bounding-box diagonal is 1. The sidecar keypoints go through the same transform, so they stay on
the surface. The transform is ``p_model = s * (R p_file - c)``; :func:`file_to_model` returns it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re

import numpy as np
import trimesh

from kpdata.errors import InputError
from kpdata.keypoints import Keypoints3D, read_clickhere_json
from kpdata.mesh import LoadedMesh, load_mesh
from kpdata.sources import shapenet

MESH_EXTS = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
KEYPOINTS_SUFFIX = ".keypoints.json"
DEFAULT_CATEGORY = "object"
ID_SEP = "--"
UP_AXES = ("y", "z")

# File frame -> Y-up frame for each up axis (rotation matrices, det +1).
_UP_ROTATION = {
    "y": np.eye(3),
    # +Z up -> +Y up: a -90 degree turn about X; (x, y, z) -> (x, z, -y).
    "z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
}


@dataclasses.dataclass(frozen=True)
class MeshModel(shapenet.ShapeNetModel):
    """One mesh file of a ``--mesh_dir`` tree. ``obj_path``: the mesh file (any of MESH_EXTS);
    ``model_dir``: its folder; ``keypoints_path``: its sidecar or ""; ``up``: the file's up axis."""

    keypoints_path: str = ""
    up: str = "y"


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "x"


def category_of(folder: str) -> str:
    """The synset id a first-level folder name stands for, or the cleaned name itself."""
    try:
        return shapenet.synset_id(folder)
    except ValueError:
        return re.sub(r"[^A-Za-z0-9-]+", "-", folder).strip("-") or DEFAULT_CATEGORY


def is_mesh_file(name: str) -> bool:
    return name.lower().endswith(MESH_EXTS) and not name.startswith(".")


def scan(root: str, categories=None, up: str = "y") -> list[MeshModel]:
    """Every mesh file under ``root`` (followed recursively, hidden folders skipped), sorted by
    (synset, model_id). ``categories``: synset ids or category names to keep (None = all); one
    asked for but absent is an InputError naming the folder and the categories present."""
    if up not in UP_AXES:
        raise ValueError(f"up axis must be one of {UP_AXES}, got {up!r}")
    if not os.path.isdir(root):
        if os.path.isfile(root):
            raise InputError("not_a_folder", "--mesh_dir takes a folder; put the file in a folder of its own", root)
        raise InputError("missing_dir", "mesh folder does not exist", root)
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files += [os.path.join(dirpath, f) for f in sorted(filenames) if is_mesh_file(f)]
    stems: dict[str, list[str]] = {}
    for path in files:
        stems.setdefault(os.path.splitext(os.path.relpath(path, root))[0], []).append(path)
    models = []
    for rel_stem, paths in stems.items():
        for path in paths:
            parts = rel_stem.split(os.sep)
            ident = ID_SEP.join(_clean(p) for p in parts)
            if len(paths) > 1:
                ident += "-" + os.path.splitext(path)[1][1:].lower()
            category = category_of(parts[0]) if len(parts) > 1 else DEFAULT_CATEGORY
            sidecar = os.path.join(root, rel_stem + KEYPOINTS_SUFFIX)
            models.append(MeshModel(category, ident, os.path.dirname(path), path, 0,
                                    sidecar if os.path.isfile(sidecar) else "", up))
    if categories:
        wanted = {_wanted(c) for c in categories}
        present = sorted({m.synset for m in models})
        missing = sorted(wanted - set(present))
        if missing:
            raise InputError("missing_category", f"no models of the categories {', '.join(missing)} "
                             f"(present: {', '.join(present) or 'none'})", root)
        models = [m for m in models if m.synset in wanted]
    return sorted(models, key=lambda m: (m.synset, m.model_id))


def _wanted(name: str) -> str:
    try:
        return shapenet.synset_id(name)
    except ValueError:
        return category_of(name)


def file_to_model(bounds_file: np.ndarray, up: str) -> np.ndarray:
    """The (4, 4) transform from a mesh file's frame to the model frame (module docstring):
    rotation ``R`` for ``up``, then ``s * (q - c)`` with ``c`` the bounding-box centre and ``s``
    one over the bounding-box diagonal of the rotated mesh. ``bounds_file``: (2, 3) min / max
    corner in the file's frame. InputError-free: a degenerate (zero-size) box raises ValueError."""
    R = _UP_ROTATION[up]
    corners = np.array([[bounds_file[i][0], bounds_file[j][1], bounds_file[k][2]]
                        for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.float64)
    rotated = corners @ R.T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    diag = float(np.linalg.norm(hi - lo))
    if not np.isfinite(diag) or diag <= 0:
        raise ValueError(f"degenerate bounding box {bounds_file.tolist()}")
    s, c = 1.0 / diag, (lo + hi) / 2.0
    T = np.eye(4)
    T[:3, :3] = s * R
    T[:3, 3] = -s * c
    return T


def _load_any(path: str) -> LoadedMesh:
    """A mesh file as a trimesh Scene in its own frame (OBJ: :func:`kpdata.mesh.load_mesh`)."""
    if path.lower().endswith(".obj"):
        return load_mesh(path)
    if not os.path.isfile(path):
        raise InputError("missing_mesh", "mesh file does not exist", path)
    logger = logging.getLogger("trimesh")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        scene = trimesh.load(path, force="scene", process=False)
    except Exception as e:  # noqa: BLE001 - any parser failure is a property of the file
        raise InputError("corrupt_mesh", f"cannot parse mesh: {type(e).__name__}: {e}", path) from None
    finally:
        logger.setLevel(level)
    meshes = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    num_faces = int(sum(len(g.faces) for g in meshes))
    if num_faces == 0:
        raise InputError("empty_mesh", "mesh has no faces (a point cloud?)", path)
    if not all(np.all(np.isfinite(g.vertices)) for g in meshes):
        raise InputError("nonfinite_vertices", "mesh has NaN or infinite vertex coordinates", path)
    return LoadedMesh(path, scene, np.array(scene.bounds, dtype=np.float64), num_faces)


def load(model: MeshModel) -> tuple[LoadedMesh, Keypoints3D]:
    """The model's mesh and sidecar keypoints (empty without a sidecar), both moved into the model
    frame (:func:`file_to_model`); InputError naming the file for bad input."""
    mesh = _load_any(model.obj_path)
    try:
        T = file_to_model(mesh.bounds, model.up)
    except ValueError as e:
        raise InputError("degenerate_mesh", str(e), model.obj_path) from None
    scene = mesh.scene.copy()
    scene.apply_transform(T)
    loaded = LoadedMesh(mesh.path, scene, np.array(scene.bounds, dtype=np.float64), mesh.num_faces)
    if not model.keypoints_path:
        return loaded, Keypoints3D.empty()
    kps = read_clickhere_json(model.keypoints_path, model.synset)
    xyz = kps.xyz @ T[:3, :3].T + T[:3, 3]
    return loaded, Keypoints3D(kps.names, xyz)
