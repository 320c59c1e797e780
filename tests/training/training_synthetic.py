"""Small synthetic datasets for the training tests, written without rendering or TensorFlow.

Each "model" is a box of its own size and colour; a view projects its 8 corners (the keypoints)
with a real camera (``kpdata.geometry`` / ``kpdata.camera``), fills their convex hull as the
object (image and mask), and stores the record with ``schemas.view``. A KeypointNet-layout
folder (no dataset_info.json, as KeypointNet's own tools write it) holds the same views as pairs
(``schemas.keypointnet``'s six original features, formats §1.2) with the OpenGL
model-view from ``geometry.cv_to_gl`` and ``projection.txt`` from the focal length.
"""
from __future__ import annotations

import json
import os

import cv2
import numpy as np

from kpdata import camera, geometry
from kpdata.seeding import rng_for
from schemas import tfrecord
from schemas.keypointnet import KEYPOINTNET_PAIR_CORE, make_pair_record
from schemas.view import VIEW, make_view_record

SIZE, FOCAL = 64, 90.0
SYNSET = "02958343"

def _view(model: int, index: int, seed: int = 0):
    rng = rng_for(seed, f"model{model}")
    half = np.array([0.45, 0.2, 0.15]) * rng.uniform(0.8, 1.2, 3)
    colour = rng.integers(60, 255, 3)
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * half
    vrng = rng_for(seed, f"model{model}/v{index}")
    vp = geometry.Viewpoint(float(vrng.uniform(0, 360)), float(vrng.uniform(5, 40)), 0.0, float(vrng.uniform(2.2, 2.8)))
    cam_T_obj = geometry.viewpoint_to_cam_T_obj(vp)
    K = camera.Intrinsics.centered(SIZE, SIZE, FOCAL).K
    uv, z = camera.project(K, cam_T_obj, corners)
    hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_8, shift=4)
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[mask > 0, :3] = colour
    rgba[mask > 0, 3] = 255
    depth = np.where(mask > 0, float(z.mean()), 0.0).astype(np.float32)
    key = f"{SYNSET}/m{model:03d}/v{index:06d}"
    rec = make_view_record(key=key, synset=SYNSET, model_id=f"m{model:03d}", seed=seed, rgba=rgba, depth=depth, K=K,
                           cam_T_obj=cam_T_obj, viewpoint=vp.as_array(), names=[f"c{i}" for i in range(8)], uv=uv, z=z,
                           xyz=corners, visible=np.ones(8, bool))
    return rec


def _write_records(path, blobs):
    with open(path, "wb") as f:
        return tfrecord.write_records(f, blobs)


def _write_lmdb(path, blobs):
    import lmdb

    env = lmdb.open(path, map_size=1 << 30, subdir=True, lock=False)
    with env.begin(write=True) as txn:
        for key, value in blobs:
            txn.put(key.encode(), value)
    env.close()
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def write_view_dataset(root: str, models: int = 6, views: int = 6, test_models: int = 2, fmt: str = "tfrecord") -> str:
    """A ``view`` dataset (train / test split by model) in ``root`` as TFRecord shards or one
    LMDB environment per split (the layout of ``pipelines.sinks``); returns ``root``."""
    os.makedirs(root, exist_ok=True)
    splits = {}
    for split, ms in (("train", range(test_models, models)), ("test", range(test_models))):
        blobs = sorted((r["key"], VIEW.encode(r)) for m in ms for r in (_view(m, v) for v in range(views)))
        if fmt == "lmdb":
            name = f"syn-{split}.lmdb"
            size = _write_lmdb(os.path.join(root, name), blobs)
        else:
            name = f"syn-{split}.tfrecord-00000-of-00001"
            size = _write_records(os.path.join(root, name), [b for _, b in blobs])
        splits[split] = {"format": fmt, "num_examples": len(blobs), "num_bytes": size,
                         "shards": [{"file": name, "examples": len(blobs), "bytes": size}]}
    with open(os.path.join(root, "kpdata_info.json"), "w") as f:
        json.dump({"name": "syn", "record": "view", "splits": splits}, f)
    return root


def write_keypointnet_folder(root: str, models: int = 4, pairs: int = 3) -> str:
    """The same kind of views as KeypointNet pairs: one ``<model>.tfrecord`` per model,
    ``projection.txt``, ``dev.txt`` (model 1), ``test.txt`` (model 0)."""
    os.makedirs(root, exist_ok=True)
    for m in range(models):
        blobs = []
        for p in range(pairs):
            r0, r1 = _view(m, 2 * p), _view(m, 2 * p + 1)
            mv = [geometry.cv_to_gl(r["camera/cam_T_obj"].reshape(4, 4)) for r in (r0, r1)]
            rec = make_pair_record(img0=r0["image/encoded"], img1=r1["image/encoded"], mv0=mv[0], mv1=mv[1])
            blobs.append(KEYPOINTNET_PAIR_CORE.encode(rec))
        _write_records(os.path.join(root, f"m{m:03d}.tfrecord"), blobs)
    f_ndc = 2 * FOCAL / SIZE
    proj = np.diag([f_ndc, f_ndc, 1.0, 0.0])
    np.savetxt(os.path.join(root, "projection.txt"), proj)
    for name, ms in (("dev", [1]), ("test", [0]), ("train", range(2, models))):
        with open(os.path.join(root, f"{name}.txt"), "w") as f:
            f.write("".join(f"m{m:03d}\n" for m in ms))
    return root
