"""PASCAL3D+ annotations: what Render for CNN's KDE scripts read (formats.md §3.1, §3.2).

Layout (PASCAL3D+ release 1.1)::

    <root>/Annotations/<cls>_pascal/<image id>.mat   variable ``record``: filename, size, objects
    <root>/CAD/<cls>.mat                             variable ``<cls>``: struct array (vertices, faces)

Each ``record.objects(i)`` has ``class``, ``bbox`` ``[x1 y1 x2 y2]`` (1-indexed pixels),
``cad_index`` (1-based) and ``viewpoint`` (``azimuth elevation theta distance focal px py
viewport``; empty when unannotated). A VOC image-set list (``ImageSets/Main/train.txt``: one image
id per line) restricts which images count, as R4CNN uses VOC2012 ``train``.

:func:`kpdata.demo.pascal3d.write_demo_annotations` writes a small synthetic set in exactly this
structure (with scipy), the built-in default of ``fit_viewpoints`` and the tests' input.
"""
from __future__ import annotations

import os

import numpy as np

from kpdata.errors import InputError


def read_image_set(path: str) -> set[str]:
    """Image ids of a VOC image-set list (first token of each non-empty line)."""
    try:
        with open(path, encoding="utf-8") as f:
            ids = {ln.split()[0] for ln in f if ln.strip()}
    except (OSError, UnicodeDecodeError) as e:
        raise InputError("bad_image_set", f"cannot read image-set list: {e}", path) from None
    if not ids:
        raise InputError("bad_image_set", "image-set list is empty", path)
    return ids


def _objects(record):
    objs = getattr(record, "objects", None)
    if objs is None:
        return []
    return list(np.atleast_1d(objs))


def _field(obj, name, default=None):
    return getattr(obj, name, default)


def _is_empty(value) -> bool:
    return value is None or (isinstance(value, np.ndarray) and value.size == 0)


def load_record(path: str):
    from scipy.io import loadmat
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as e:  # noqa: BLE001 - scipy raises many kinds for a corrupt file
        raise InputError("bad_annotation", f"cannot read .mat: {type(e).__name__}: {e}", path) from None
    if "record" not in mat:
        raise InputError("bad_annotation", "no 'record' variable (not a PASCAL3D+ annotation)", path)
    return mat["record"]


def annotation_files(root: str, cls: str, image_set: set[str] | None) -> list[str]:
    folder = os.path.join(root, "Annotations", f"{cls}_pascal")
    if not os.path.isdir(folder):
        raise InputError("missing_annotations", f"no annotation folder for class {cls}", folder)
    names = sorted(n for n in os.listdir(folder) if n.endswith(".mat"))
    if image_set is not None:
        names = [n for n in names if n[:-4] in image_set]
    return [os.path.join(folder, n) for n in names]


def read_objects(root: str, cls: str, image_set: set[str] | None) -> list[tuple[str, object]]:
    """(file, object) of every object of class ``cls`` in the class's annotation files of the
    image set."""
    out = []
    for path in annotation_files(root, cls, image_set):
        for obj in _objects(load_record(path)):
            if str(_field(obj, "class", "")) == cls:
                out.append((path, obj))
    return out


def viewpoints(objects) -> np.ndarray:
    """(N, 4) ``azimuth elevation theta distance`` of the objects with a non-empty viewpoint and
    a non-zero distance (R4CNN's selection; distances not yet divided)."""
    rows = []
    for path, obj in objects:
        vp = _field(obj, "viewpoint")
        if _is_empty(vp):
            continue
        try:
            row = [float(_field(vp, k)) for k in ("azimuth", "elevation", "theta", "distance")]
        except (TypeError, ValueError):
            raise InputError("bad_annotation", "viewpoint lacks azimuth/elevation/theta/distance", path) from None
        if row[3] != 0:
            rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def project_3d(x3d, viewpoint) -> np.ndarray:
    """PASCAL3D+'s ``project_3d``: (N, 3) CAD points -> (N, 2) 1-indexed image points.

    Camera at ``d (cos e sin a, -cos e cos a, sin e)``, rotation ``Rx(-(pi/2 - e)) Rz(-a)``,
    projection ``diag(M f, M f, -1)`` with ``M = viewport``, then an in-plane rotation by theta,
    y flipped and the principal point added."""
    a, e = np.deg2rad(float(viewpoint.azimuth)), np.deg2rad(float(viewpoint.elevation))
    d, f = float(viewpoint.distance), float(viewpoint.focal)
    theta = np.deg2rad(float(viewpoint.theta))
    principal = np.array([float(viewpoint.px), float(viewpoint.py)])
    m = float(viewpoint.viewport)
    c = np.array([d * np.cos(e) * np.sin(a), -d * np.cos(e) * np.cos(a), d * np.sin(e)])
    a, e = -a, -(np.pi / 2 - e)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    r = rx @ rz
    p = np.diag([m * f, m * f, -1.0]) @ np.hstack([r, (-r @ c)[:, None]])
    x3d = np.asarray(x3d, dtype=np.float64).reshape(-1, 3)
    x = p @ np.hstack([x3d, np.ones((len(x3d), 1))]).T
    x = (x[:2] / x[2]).T
    r2 = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    x = (r2 @ x.T).T
    x[:, 1] = -x[:, 1]
    return x + principal


def load_cad(root: str, cls: str) -> list[np.ndarray]:
    """Vertices (V, 3) of each CAD model of the class (``CAD/<cls>.mat``), in cad_index order."""
    from scipy.io import loadmat
    path = os.path.join(root, "CAD", f"{cls}.mat")
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as e:  # noqa: BLE001
        raise InputError("bad_cad", f"cannot read CAD models: {type(e).__name__}: {e}", path) from None
    if cls not in mat:
        raise InputError("bad_cad", f"no variable {cls!r} in the CAD file", path)
    return [np.asarray(m.vertices, dtype=np.float64).reshape(-1, 3) for m in np.atleast_1d(mat[cls])]


def truncations(objects, cad: list[np.ndarray]) -> np.ndarray:
    """(N, 4) ``left right top bottom`` of the objects with a CAD index and a viewpoint:
    ``(gt - cad box) / cad size`` per side (R4CNN's ``get_voc12train_truncation_stats.m``)."""
    rows = []
    for path, obj in objects:
        vp, idx = _field(obj, "viewpoint"), _field(obj, "cad_index")
        if _is_empty(vp) or _is_empty(idx) or float(_field(vp, "distance", 0)) == 0:
            continue
        i = int(idx) - 1
        if not 0 <= i < len(cad):
            raise InputError("bad_annotation", f"cad_index {int(idx)} outside 1..{len(cad)}", path)
        x = project_3d(cad[i], vp)
        x1, y1 = x.min(axis=0)
        x2, y2 = x.max(axis=0)
        w, h = x2 - x1, y2 - y1
        b = np.asarray(_field(obj, "bbox"), dtype=np.float64).reshape(-1)
        if b.size != 4 or w <= 0 or h <= 0:
            raise InputError("bad_annotation", f"bad bbox {b.tolist()} or degenerate CAD box", path)
        rows.append([(b[0] - x1) / w, (b[2] - x2) / w, (b[1] - y1) / h, (b[3] - y2) / h])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)
