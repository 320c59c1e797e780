"""KeyPose ``.obj`` CAD files: the ``o mesh`` group and the ``o kp.NNN`` keypoint groups (formats.md §2)."""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from kpdata.errors import InputError


# --------------------------------------------------------------------------- KeyPose .obj files


@dataclasses.dataclass(frozen=True)
class KeyPoseObj:
    """A KeyPose CAD file: ``vertices`` (V, 3) and ``faces`` (F, 3) of the ``o mesh`` group (metres),
    ``keypoints`` (K, 3): the mean of each ``o kp.NNN`` group's vertices, in NNN order."""

    vertices: np.ndarray
    faces: np.ndarray
    keypoints: np.ndarray
    names: tuple


def read_keypose_obj(path: str) -> KeyPoseObj:
    """Read a KeyPose ``.obj``: ``o mesh`` then ``v`` lines, then ``o kp.000``, ``o kp.001``... each a
    small cube whose vertex mean is the keypoint. ``f`` lines of the mesh group are kept (1-based,
    ``a/b/c`` forms allowed); a file whose mesh has none gets the convex hull of its vertices, so
    vertex-only CAD files still render."""
    if not os.path.isfile(path):
        raise InputError("missing_mesh", "KeyPose .obj does not exist", path)
    groups: dict[str, list] = {}
    order: list[str] = []
    verts: list = []
    faces: list = []
    current = "mesh"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts or parts[0].startswith("#"):
                    continue
                if parts[0] in ("o", "g") and len(parts) > 1:
                    current = parts[1]
                    if current not in groups:
                        groups[current] = []
                        order.append(current)
                elif parts[0] == "v":
                    xyz = [float(p) for p in parts[1:4]]
                    if len(xyz) != 3:
                        raise ValueError(f"line {lineno}: vertex needs 3 coordinates")
                    verts.append(xyz)
                    groups.setdefault(current, []).append(len(verts) - 1)
                    if current not in order:
                        order.append(current)
                elif parts[0] == "f" and not current.startswith("kp."):
                    idx = [int(p.split("/")[0]) for p in parts[1:]]
                    idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                    for j in range(1, len(idx) - 1):
                        faces.append([idx[0], idx[j], idx[j + 1]])
    except (OSError, ValueError) as e:
        raise InputError("corrupt_mesh", f"cannot parse KeyPose .obj: {e}", path) from None
    verts_a = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(verts_a)):
        raise InputError("nonfinite_vertices", "NaN or infinite vertex coordinates", path)
    kp_names = sorted((g for g in order if g.startswith("kp.")),
                      key=lambda g: (int(g[3:]) if g[3:].isdigit() else 1 << 30, g))
    if not kp_names:
        raise InputError("no_keypoints", "no 'o kp.NNN' keypoint groups", path)
    kps = np.array([verts_a[groups[g]].mean(axis=0) for g in kp_names if groups[g]]).reshape(-1, 3)
    if len(kps) != len(kp_names):
        raise InputError("no_keypoints", "a keypoint group has no vertices", path)
    mesh_idx = sorted(i for g in order if not g.startswith("kp.") for i in groups[g])
    if not mesh_idx:
        raise InputError("empty_mesh", "no mesh vertices before the keypoint groups", path)
    faces_a = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces_a) and (faces_a.min() < 0 or faces_a.max() >= len(verts_a)):
        raise InputError("corrupt_mesh", "a face refers to a vertex that does not exist", path)
    if len(faces_a) == 0:
        import trimesh
        try:
            hull = trimesh.Trimesh(verts_a[mesh_idx], process=False).convex_hull
        except Exception as e:  # noqa: BLE001 - qhull fails on degenerate point sets
            raise InputError("empty_mesh", f"mesh vertices span no volume ({type(e).__name__})", path) from None
        return KeyPoseObj(np.asarray(hull.vertices), np.asarray(hull.faces), kps, tuple(kp_names))
    return KeyPoseObj(verts_a, faces_a, kps, tuple(kp_names))


def keypose_obj_text(vertices, faces, keypoints, cube: float = 0.002) -> str:
    """A KeyPose-style ``.obj``: ``o mesh`` with ``v`` and ``f`` lines (metres), then one
    ``o kp.NNN`` cube of side ``cube`` centred on each keypoint."""
    lines = ["o mesh"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices).reshape(-1, 3)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces).reshape(-1, 3)]
    h = cube / 2
    corners = np.array([[sx, sy, sz] for sx in (-h, h) for sy in (-h, h) for sz in (-h, h)])
    for i, k in enumerate(np.asarray(keypoints).reshape(-1, 3)):
        lines.append(f"o kp.{i:03d}")
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in corners + k]
    return "\n".join(lines) + "\n"


