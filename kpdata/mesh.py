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

from kpdata.errors import InputError, is_utf8, printable

_MAP_RE = re.compile(r"^\s*(map_Kd|map_Ka|map_d|map_bump|bump)\s+(.+?)\s*$", re.IGNORECASE)
_MTLLIB_RE = re.compile(r"^\s*mtllib\s+(.+?)\s*$")

# The largest texture side a model may have, in pixels: the GL limit of Mesa's llvmpipe and of
# most GPUs (GL_MAX_TEXTURE_SIZE). A fixed number, not the machine's own limit, so that one input
# gives one output on every machine; a larger texture fails the model (dead letter) rather than
# being resized behind the user's back.
MAX_TEXTURE_SIZE = 16384


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
                    m = _MTLLIB_RE.match(raw.decode("utf-8", "surrogateescape"))
                    if m:
                        libs.append(m.group(1))
    except OSError as e:
        raise InputError("unreadable_mesh", f"cannot read OBJ: {e.strerror}", obj_path) from None
    for lib in libs:
        mtl_path = os.path.normpath(os.path.join(obj_dir, lib))
        if not os.path.isfile(mtl_path):
            raise InputError("missing_material", f"material library {lib!r} named by the OBJ does not exist", mtl_path)
        try:
            with open(mtl_path, "rb") as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise InputError("unreadable_material", f"cannot read material library: {e.strerror}", mtl_path) from None
        for raw in lines:
            m = _MAP_RE.match(raw.decode("utf-8", "surrogateescape"))
            if m:
                out.append((mtl_path, _texture_path(m.group(2), os.path.dirname(mtl_path))))
    return out




def read_image_bytes(path: str, what: str) -> np.ndarray:
    """An image file decoded from its bytes (any file name: OpenCV's own ``imread`` crashes on some
    names that are not UTF-8), ``cv2.IMREAD_UNCHANGED``. InputError naming the real cause: missing,
    unreadable (permissions...), empty or not decodable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise InputError("missing_texture", f"{what} does not exist", printable(path)) from None
    except OSError as e:
        raise InputError("unreadable_texture", f"{what} cannot be read: {e.strerror}", printable(path)) from None
    if data.size == 0:
        raise InputError("corrupt_texture", f"{what} is an empty file", printable(path))
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("corrupt_texture", f"{what} cannot be decoded ({data.size} bytes, not a PNG/JPEG image)",
                         printable(path))
    return img


def _check_text(obj_path: str) -> None:
    """InputError when the OBJ is not a text file with face lines: binary data (a NUL byte or
    mostly non-UTF-8 bytes) is ``corrupt_mesh``, a text file without any ``f`` line ``empty_mesh``."""
    try:
        with open(obj_path, "rb") as f:
            head = f.read(1 << 16)
            faces = head.startswith(b"f ") or b"\nf " in head
            while not faces:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                faces = b"\nf " in chunk or b"\nf\t" in chunk
    except OSError as e:
        raise InputError("unreadable_mesh", f"cannot read OBJ: {e.strerror}", printable(obj_path)) from None
    if b"\x00" in head or head.decode("utf-8", "replace").count("\ufffd") > len(head) // 10:
        raise InputError("corrupt_mesh", "not a text OBJ file (binary data)", printable(obj_path))
    if not faces:
        raise InputError("empty_mesh", "OBJ has no face ('f') lines", printable(obj_path))


def load_mesh(obj_path: str) -> LoadedMesh:
    """Load an OBJ with its materials and textures; raise InputError on any data problem.

    Checked before the mesh is parsed: the OBJ is a text file with face lines, every texture its
    materials name exists, is readable, decodes, and is at most :data:`MAX_TEXTURE_SIZE` pixels on
    a side. After: there are faces, every vertex is finite and some face has an area > 0."""
    if not os.path.isfile(obj_path):
        raise InputError("missing_mesh", "OBJ file does not exist", printable(obj_path))
    _check_text(obj_path)
    for mtl_path, tex in referenced_textures(obj_path):
        named = f"texture {printable(os.path.relpath(tex, os.path.dirname(mtl_path)))!r} named in " \
                f"{printable(os.path.basename(mtl_path))}"
        if not os.path.isfile(tex):
            raise InputError("missing_texture", f"{named} does not exist", printable(tex))
        img = read_image_bytes(tex, named)
        if max(img.shape[:2]) > MAX_TEXTURE_SIZE:
            raise InputError("texture_too_large", f"{named} is {img.shape[1]}x{img.shape[0]} pixels; the renderer "
                             f"takes at most {MAX_TEXTURE_SIZE} on a side (resize it)", printable(tex))
        if not is_utf8(os.path.relpath(tex, os.path.dirname(mtl_path))):
            raise InputError("non_utf8_name", f"{named}: the file name is not valid UTF-8 (the mesh loader reads "
                             "material files as text); rename it", printable(tex))
    logger = logging.getLogger("trimesh")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        # ShapeNet v2 MTLs name "../images/..."; the textures were checked above.
        resolver = trimesh.resolvers.FilePathResolver(obj_path, allow_anywhere=True)
        scene = trimesh.load(obj_path, force="scene", process=False, resolver=resolver)
    except Exception as e:  # noqa: BLE001 - any parser failure is a property of the file
        raise InputError("corrupt_mesh", f"cannot parse OBJ: {type(e).__name__}: {e}", printable(obj_path)) from None
    finally:
        logger.setLevel(level)
    meshes = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    num_faces = int(sum(len(g.faces) for g in meshes))
    if num_faces == 0:
        raise InputError("empty_mesh", "OBJ has face lines but no usable face (indices out of range?)",
                         printable(obj_path))
    for g in meshes:
        if not np.all(np.isfinite(g.vertices)):
            raise InputError("nonfinite_vertices", "OBJ has NaN or infinite vertex coordinates", printable(obj_path))
    if not any(np.any(_face_areas(g) > 0) for g in meshes):
        raise InputError("degenerate_mesh", f"mesh has no face with area > 0 (all {num_faces} faces are "
                         "degenerate: nothing would render)", printable(obj_path))
    bounds = np.array(scene.bounds, dtype=np.float64)
    return LoadedMesh(obj_path, scene, bounds, num_faces)


def _face_areas(g: trimesh.Trimesh) -> np.ndarray:
    """(F,) float64 face areas (0 for faces naming a vertex out of range)."""
    v, f = np.asarray(g.vertices, dtype=np.float64), np.asarray(g.faces)
    if f.size == 0:
        return np.zeros(0)
    ok = np.all((f >= 0) & (f < len(v)), axis=1)
    f = f[ok]
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
