"""A synthetic PASCAL3D+-structured annotation set (the built-in default of ``fit_viewpoints`` and the
tests' input), written with scipy in exactly the layout :mod:`kpdata.sources.pascal3d` reads."""
from __future__ import annotations

import os

import numpy as np

from kpdata.sources.pascal3d import project_3d

__all__ = ["DEMO_CLASSES", "write_demo_annotations"]

DEMO_CLASSES = ("bus", "car", "motorbike")
_DEMO_SIZES = {"bus": (2.6, 1.0, 1.1), "car": (2.2, 0.9, 0.7), "motorbike": (1.0, 0.3, 0.6)}


def _box_vertices(lx, ly, lz, scale):
    c = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (0, 2)], np.float64)
    return c * np.array([lx, ly, lz]) * 0.5 * scale


def write_demo_annotations(root: str, images_per_class: int = 240, seed: int = 0) -> dict:
    """Write a synthetic PASCAL3D+-structured set under ``root``: ``Annotations/<cls>_pascal/*.mat``
    (1-5 objects per image, viewpoints from a seeded mixture, boxes = projected CAD boxes with
    random truncation), ``CAD/<cls>.mat`` (two box models per class) and
    ``ImageSets/Main/train.txt`` (about 70 % of the image ids; the rest play VOC ``val``).
    Returns {"train": [ids], "val": [ids]}."""
    from scipy.io import savemat
    rng = np.random.default_rng(seed)
    ids = {"train": [], "val": []}
    os.makedirs(os.path.join(root, "CAD"), exist_ok=True)
    os.makedirs(os.path.join(root, "ImageSets", "Main"), exist_ok=True)
    for ci, cls in enumerate(DEMO_CLASSES):
        cads = [_box_vertices(*_DEMO_SIZES[cls], s) for s in (1.0, 1.15)]
        cad_struct = np.empty(len(cads), dtype=[("vertices", object), ("faces", object)])
        for i, v in enumerate(cads):
            cad_struct[i] = (v, np.array([[1, 2, 3], [2, 3, 4]], np.float64))
        savemat(os.path.join(root, "CAD", f"{cls}.mat"), {cls: cad_struct})
        folder = os.path.join(root, "Annotations", f"{cls}_pascal")
        os.makedirs(folder, exist_ok=True)
        for k in range(images_per_class):
            image_id = f"20{8 + ci:02d}_{k:06d}"
            n = int(rng.integers(1, 6))
            objs = np.empty(n, dtype=[("class", object), ("bbox", object), ("cad_index", object),
                                      ("viewpoint", object), ("truncated", object)])
            for j in range(n):
                mode = rng.integers(3)
                az = (rng.normal((30.0, 150.0, 270.0)[mode], 45.0)) % 360.0
                el = rng.normal(8.0, 6.0)
                theta = rng.normal(0.0, 3.0)
                dist = float(np.clip(rng.normal(6.5, 1.2), 4.0, 10.0))
                vp = {"azimuth": az, "elevation": el, "theta": theta, "distance": dist, "focal": 1.0,
                      "px": 250.0, "py": 187.0, "viewport": 2000.0}
                cad_index = int(rng.integers(1, len(cads) + 1))

                class _VP:  # attribute access for project_3d
                    pass
                v = _VP()
                v.__dict__.update(vp)
                x = project_3d(cads[cad_index - 1], v)
                x1, y1 = x.min(axis=0)
                x2, y2 = x.max(axis=0)
                w, h = x2 - x1, y2 - y1
                cut = np.where(rng.random(4) < 0.3, rng.uniform(0.0, 0.35, 4), 0.0) * [1, -1, 1, -1]
                bbox = [x1 + w * cut[0], y1 + h * cut[2], x2 + w * cut[1], y2 + h * cut[3]]
                unannotated = rng.random() < 0.05
                objs[j] = (cls if j or rng.random() > 0.03 else "person", np.array(bbox),
                           np.array(float(cad_index)), np.zeros((0, 0)) if unannotated else vp,
                           np.array(float(bool(cut.any()))))
            record = {"filename": image_id + ".jpg", "size": {"width": 500.0, "height": 375.0, "depth": 3.0},
                      "objects": objs}
            savemat(os.path.join(folder, image_id + ".mat"), {"record": record})
            ids["train" if rng.random() < 0.7 else "val"].append(image_id)
    with open(os.path.join(root, "ImageSets", "Main", "train.txt"), "w", encoding="ascii") as f:
        f.write("".join(i + "\n" for i in sorted(ids["train"])))
    return ids
