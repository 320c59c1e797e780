"""Loading OBJ models (with MTL materials and textures) and checking they are usable.

Everything a model file can get wrong becomes an :class:`~kpdata.errors.InputError` naming the
file: unreadable or unparsable OBJ, no faces, non-finite vertices, a texture the MTL names that
is missing or unreadable. The loaded scene keeps the OBJ's own frame and units.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re

import cv2
import numpy as np
import trimesh

from kpdata.errors import InputError

_MAP_RE = re.compile(r"^\s*(map_Kd|map_Ka|map_d|map_bump|bump)\s+(.+?)\s*$", re.IGNORECASE)
_MTLLIB_RE = re.compile(r"^\s*mtllib\s+(.+?)\s*$")


@dataclasses.dataclass
class LoadedMesh:
    """A model ready to render: ``scene`` (trimesh.Scene, OBJ frame) and its bounds."""

    path: str
    scene: trimesh.Scene
    bounds: np.ndarray  # (2, 3) min / max corner, OBJ frame
    num_faces: int

    @property
    def radius(self) -> float:
        """Radius of the bounding sphere centred at the OBJ origin."""
        return float(np.max(np.linalg.norm(self.bounds, axis=1)))

    def parts(self) -> list[trimesh.Trimesh]:
        """The scene's geometries that have faces, in file order, each in the OBJ frame (a copy
        with the scene graph's transform applied where that is not the identity)."""
        out = []
        for node_name in self.scene.graph.nodes_geometry:
            transform, geom_name = self.scene.graph[node_name]
            geom = self.scene.geometry[geom_name]
            if not hasattr(geom, "faces") or len(geom.faces) == 0:
                continue
            transform = np.asarray(transform, dtype=np.float64)
            if not np.allclose(transform, np.eye(4)):
                geom = geom.copy()
                geom.apply_transform(transform)
            out.append(geom)
        return out


def _texture_path(line_value: str, mtl_dir: str) -> str:
    # The file name is the last token; options such as "-bm 0.5" may come before it.
    name = line_value.split()[-1].replace("\\", "/")
    return os.path.normpath(os.path.join(mtl_dir, name))


def referenced_textures(obj_path: str) -> list[tuple[str, str]]:
    """(mtl_path, texture_path) for every texture the OBJ's material libraries name.

    A material library the OBJ names but which is missing raises InputError.
    """
    obj_dir = os.path.dirname(obj_path)
    out = []
    try:
        with open(obj_path, "rb") as f:
            libs = []
            for raw in f:
                if raw.startswith(b"mtllib"):
                    m = _MTLLIB_RE.match(raw.decode("utf-8", "replace"))
                    if m:
                        libs.append(m.group(1))
    except OSError as e:
        raise InputError("unreadable_mesh", f"cannot read OBJ: {e.strerror}", obj_path) from None
    for lib in libs:
        mtl_path = os.path.normpath(os.path.join(obj_dir, lib))
        if not os.path.isfile(mtl_path):
            raise InputError("missing_material", f"material library {lib!r} named by the OBJ does not exist", mtl_path)
        with open(mtl_path, "rb") as f:
            for raw in f:
                m = _MAP_RE.match(raw.decode("utf-8", "replace"))
                if m:
                    out.append((mtl_path, _texture_path(m.group(2), os.path.dirname(mtl_path))))
    return out


def load_mesh(obj_path: str) -> LoadedMesh:
    """Load an OBJ with its materials and textures; raise InputError on any data problem."""
    if not os.path.isfile(obj_path):
        raise InputError("missing_mesh", "OBJ file does not exist", obj_path)
    for mtl_path, tex in referenced_textures(obj_path):
        named = f"texture {os.path.relpath(tex, os.path.dirname(mtl_path))!r} named in {os.path.basename(mtl_path)}"
        if not os.path.isfile(tex):
            raise InputError("missing_texture", f"{named} does not exist", tex)
        if cv2.imread(tex, cv2.IMREAD_UNCHANGED) is None:
            raise InputError("corrupt_texture", f"{named} cannot be decoded", tex)
    logger = logging.getLogger("trimesh")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        # ShapeNet v2 MTLs name "../images/..."; the textures were checked above.
        resolver = trimesh.resolvers.FilePathResolver(obj_path, allow_anywhere=True)
        scene = trimesh.load(obj_path, force="scene", process=False, resolver=resolver)
    except Exception as e:  # noqa: BLE001 - any parser failure is a property of the file
        raise InputError("corrupt_mesh", f"cannot parse OBJ: {type(e).__name__}: {e}", obj_path) from None
    finally:
        logger.setLevel(level)
    meshes = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    num_faces = int(sum(len(g.faces) for g in meshes))
    if num_faces == 0:
        raise InputError("empty_mesh", "OBJ has no faces", obj_path)
    for g in meshes:
        if not np.all(np.isfinite(g.vertices)):
            raise InputError("nonfinite_vertices", "OBJ has NaN or infinite vertex coordinates", obj_path)
    bounds = np.array(scene.bounds, dtype=np.float64)
    return LoadedMesh(obj_path, scene, bounds, num_faces)
