"""Small written dataset folders of every record kind, made without rendering, Beam or TensorFlow,
for the tests of ``schemas.dataset.records`` and ``schemas.dataset.previews``.

Each folder has the layout the pipelines write (``kpdata_info.json`` listing TFRecord shards or
one LMDB per split, named by ``schemas.dataset.names``); the records come from the schemas' own
record makers, with small synthetic images (a model's square in its own colour).
"""
from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np

from kpdata import clickhere as ch
from kpdata import keypose
from kpdata.clickhere import imageops
from kpdata.clickhere import keypoint_maps as km
from schemas import clickhere as chs
from schemas import tfrecord
from schemas.dataset import caffe_lmdb, lmdb, names
from schemas.keypointnet import KEYPOINTNET_PAIR, KEYPOINTNET_PAIR_CORE
from schemas.keypointnet import make_pair_record as make_keypointnet_pair
from schemas.keypose import KEYPOSE, make_keypose_record
from schemas.kp2d import KP2D_PAIR
from schemas.kp2d import make_pair_record as make_kp2d_pair
from schemas.view import VIEW, make_view_record

SIZE = 24
SYNSET = "02958343"
KEYPOSE_SAMPLE = os.path.join("keypose_sample", "bottle_0", "texture_5_pose_0")


def image(model: int, index: int, channels: int = 4, size: int = SIZE) -> np.ndarray:
    """(size, size, channels) uint8: model ``model``'s colour in a square that moves with ``index``
    (alpha 255 inside, 0 outside)."""
    img = np.zeros((size, size, channels), np.uint8)
    o = 2 + index % 5
    img[o:o + size // 2, o:o + size // 2, :3] = (40 + 50 * model, 200 - 30 * model, 60 + 20 * index)
    if channels == 4:
        img[o:o + size // 2, o:o + size // 2, 3] = 255
    return img


def write_dataset(root, record: str, splits: dict, fmt: str = "tfrecord", **info) -> str:
    """``splits``: {split: [(key, serialized record)]} -> one TFRecord shard or LMDB per split
    (sorted by key) and ``kpdata_info.json`` (``record``, ``splits``, ``info``); returns ``root``."""
    root = str(root)
    os.makedirs(root, exist_ok=True)
    out = {}
    for split, recs in sorted(splits.items()):
        recs = sorted(recs, key=lambda kv: kv[0])
        if fmt == "lmdb":
            name = names.lmdb_name("syn", split)
            env = lmdb.open_write(os.path.join(root, name))
            with env.begin(write=True) as txn:
                for key, value in recs:
                    txn.put(key.encode("utf-8"), value)
            env.sync(True)
            env.close()
        else:
            name = names.shard_name("syn", split, 0, 1)
            with open(os.path.join(root, name), "wb") as f:
                tfrecord.write_records(f, (value for _, value in recs))
        out[split] = {"format": fmt, "num_examples": len(recs), "num_bytes": 0,
                      "shards": [{"file": name, "examples": len(recs), "bytes": 0}]}
    with open(os.path.join(root, names.KPDATA_INFO), "w", encoding="utf-8") as f:
        json.dump({"name": "syn", "record": record, "splits": out, **info}, f)
    return root


def view_record(model: int, index: int) -> dict:
    """A ``view`` record of model ``m<model>``, view ``index``: two keypoints, the second occluded."""
    rgba = image(model, index)
    depth = np.where(rgba[..., 3] > 0, 2.0, 0.0).astype(np.float32)
    uv = np.array([[5.0 + index, 6.0], [12.0, 14.0 - index]])
    return make_view_record(key=f"{SYNSET}/m{model}/v{index:06d}", synset=SYNSET, model_id=f"m{model}", seed=0,
                            rgba=rgba, depth=depth, K=[[20, 0, 11.5], [0, 20, 11.5], [0, 0, 1]], cam_T_obj=np.eye(4),
                            viewpoint=[30.0 * index, 10.0, 0.0, 2.0], names=["nose", "tail"], uv=uv, z=[2.0, 2.0],
                            xyz=np.zeros((2, 3)), visible=[True, False])


def write_views(root, models: int = 3, views: int = 4, fmt: str = "tfrecord") -> str:
    """A ``view`` dataset: model 0 in ``test``, the others in ``train``."""
    splits = {"train": [], "test": []}
    for m in range(models):
        for v in range(views):
            rec = view_record(m, v)
            splits["test" if m == 0 else "train"].append((rec["key"], VIEW.encode(rec)))
    return write_dataset(root, VIEW.name, splits, fmt)


def clickhere_view(model: int, index: int, flip: bool = True) -> dict:
    """A compact ``clickhere_view`` record of a car: two keypoints, their ``_r`` copies when ``flip``."""
    rgb = image(model, index, 3, 40)
    obj = ch.object_class_index("car")
    angles = (30 * index % 360, 10, 355)
    stem = ch.view_stem(SYNSET, f"m{model}", index, angles, 2.0)
    uv = np.array([[8.0, 10.0], [30.0, 20.0 + index]])
    names = ["car_left_front_wheel", "car_right_back_trunk"]
    table = ch.KeypointClassTable.clickhere34().names
    classes = [table.index(n) for n in names]
    flip_classes = [table.index(km.swap_left_right(n)) for n in names]
    keys = [ch.instance_key(10 * model + index + 1000 * i, stem, obj, c, False) for i, c in enumerate(classes)]
    # an _r key keeps the original class (Click-Here's get_job_key); the copy's one-hot is flip_classes'
    flip_keys = [ch.instance_key(10 * model + index + 5000 * i, stem, obj, c, True)
                 for i, c in enumerate(classes)] if flip else []
    return chs.CLICKHERE_VIEW.record({
        "key": f"{SYNSET}/m{model}/v{index:06d}", "synset": SYNSET, "model_id": f"m{model}", "seed": 0,
        "image/jpeg": imageops.encode_jpeg(rgb), "image/width": 40, "image/height": 40,
        "viewpoint": [angles[0], angles[1], 5.0, 2.0], "object_class": obj,
        "viewpoint_label": km.viewpoint_label(obj, *angles), "num_keypoint_classes": 34,
        "keypoints/names": names, "keypoints/uv": uv,
        "keypoints/pixel": ch.crop_pixels(uv, 40, 40), "keypoints/class": classes,
        "keypoints/flip_class": flip_classes, "instances/key": keys, "instances/flip_key": flip_keys,
        "render/crop_box": [0, 0, 40, 40], "render/truncation": np.zeros(4), "render/environment_energy": 1.0,
        "render/lights": np.zeros((1, 4)), "render/background": "gray:128",
        "render/crop_render": "full"})


def write_clickhere(root, layout: str, models: int = 2, views: int = 2) -> str:
    """A clickhere dataset of ``layout``: ``clickhere_view`` (compact TFRecord), ``clickhere_instance``
    (instance TFRecords) or ``caffe_datum`` (Click-Here's LMDB folder per split); the views of
    model 0 go to ``test``, without ``_r`` copies."""
    views_by_split = {"train": [], "test": []}
    for m in range(models):
        for v in range(views):
            rec = clickhere_view(m, v, flip=m != 0)
            views_by_split["test" if m == 0 else "train"].append((rec["key"], chs.CLICKHERE_VIEW.encode(rec)))
    if layout == chs.CLICKHERE_VIEW.name:
        return write_dataset(root, layout, views_by_split, layout="clickhere")
    if layout == chs.CLICKHERE_INSTANCE.name:
        return write_dataset(root, layout, {
            split: [(inst["key"], chs.encode_instance(inst)) for _, raw in vs for inst in chs.expand(chs.decode_view(raw))]
            for split, vs in views_by_split.items()}, layout="clickhere")
    os.makedirs(root, exist_ok=True)
    splits = {}
    for split, vs in views_by_split.items():
        shard = caffe_lmdb.write_caffe_lmdbs(os.path.join(str(root), split),
                                             [(k, caffe_lmdb.pack_view(raw)) for k, raw in vs])
        splits[split] = {"format": "clickhere_lmdb", "num_examples": shard["examples"], "num_bytes": shard["bytes"],
                         "shards": [{k: shard[k] for k in ("file", "examples", "bytes")}]}
    with open(os.path.join(str(root), names.KPDATA_INFO), "w", encoding="utf-8") as f:
        json.dump({"name": "syn", "record": layout, "layout": "clickhere", "splits": splits}, f)
    return str(root)


def keypointnet_record(model: int, index: int, extras: bool) -> bytes:
    """A serialized ``keypointnet_pair`` (the core six features, or with the extras)."""
    mv0, mv1 = np.eye(4), np.eye(4)
    mv0[2, 3], mv1[2, 3] = -2.0, -2.5
    e = None
    if extras:
        e = {"key": f"{SYNSET}/m{model}/p{index:04d}", "synset": SYNSET, "model_id": f"m{model}", "seed": 0,
             "viewpoint0": [0, 10, 0, 2], "viewpoint1": [40, 10, 0, 2.5], "object/center": [0, 0, 0],
             "object/scale": 1.0, "keypoints/names": ["a"], "keypoints/xyz": [[0, 0, 0]],
             "keypoints/uv0": [[11.5, 11.5]], "keypoints/uv1": [[11.0, 11.5]], "keypoints/visible0": [True],
             "keypoints/visible1": [True]}
    rec = make_keypointnet_pair(img0=image(model, 2 * index), img1=image(model, 2 * index + 1), mv0=mv0, mv1=mv1, extras=e)
    return (KEYPOINTNET_PAIR if extras else KEYPOINTNET_PAIR_CORE).encode(rec)


def write_keypointnet(root, models: int = 3, pairs: int = 2, extras: bool = True) -> str:
    """A ``keypointnet_pair`` dataset, every pair in ``train``."""
    recs = [(f"m{m}/p{p:04d}", keypointnet_record(m, p, extras)) for m in range(models) for p in range(pairs)]
    return write_dataset(root, KEYPOINTNET_PAIR.name, {"train": recs}, layout="keypointnet")


def kp2d_record(photo: int, index: int) -> tuple[str, bytes]:
    """``(key, serialized kp2d_pair)`` of photo ``photo``'s pair ``index`` (a small translation)."""
    key = f"photos/p{photo}.jpg/p{index}"
    h = np.eye(3)
    h[0, 2] = 0.1 * (index + 1)
    rec = make_kp2d_pair(key=key, image_path=f"photos/p{photo}.jpg", seed=0, pair_index=index,
                         image=image(photo, index, 3, 32), image_aug=image(photo, index + 1, 3, 32), homography=h,
                         homography_pixels=h, source_size=(32, 32))
    return key, KP2D_PAIR.encode(rec)


def write_kp2d(root, photos: int = 3, pairs: int = 2) -> str:
    return write_dataset(root, KP2D_PAIR.name, {"train": [kp2d_record(p, i) for p in range(photos) for i in range(pairs)]})


def write_sequences(root, fixtures: str, mask: bool = True, mono: bool = False) -> str:
    """A KeyPose sequence folder ``<root>/bottle_0/texture_5_pose_0`` from the fixture's pbtxt
    files, with 32x18 PNGs (the left image's alpha = its mask) and, when ``mask``, ``_mask.png``;
    ``mono``: no right files. Returns ``root``."""
    src = os.path.join(fixtures, KEYPOSE_SAMPLE)
    dst = os.path.join(str(root), "bottle_0", "texture_5_pose_0")
    os.makedirs(dst, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not (mono and name.endswith("_R.pbtxt")):
            shutil.copy(os.path.join(src, name), dst)
    for i, frame in enumerate(keypose.list_frames(dst)):
        keypose.write_png(keypose.frame_path(dst, frame, "L"), image(i, 0, 4, 32)[:18])
        if not mono:
            keypose.write_png(keypose.frame_path(dst, frame, "R"), image(i, 1, 4, 32)[:18])
        if mask:
            keypose.write_png(keypose.frame_path(dst, frame, "mask"), image(i, 0, 4, 32)[:18, :, 3])
    return str(root)


def write_keypose(root, fixtures: str, splits=(("train", 2), ("val", 1))) -> str:
    """A ``keypose`` dataset: the fixture's frames (not resized) with 32x18 B, G, R images (the
    R, G, B ``image(i, side, 3, 32)`` reversed); the
    first frames to the first split, and so on."""
    folder = os.path.join(fixtures, KEYPOSE_SAMPLE)
    frames = keypose.list_frames(folder)
    out, i = {}, 0
    for split, n in splits:
        out[split] = []
        for frame in frames[i:i + n]:
            kt_l = keypose.read_key_targets(keypose.frame_path(folder, frame, "L_pb"))
            kt_r = keypose.read_key_targets(keypose.frame_path(folder, frame, "R_pb"))
            # opaque 3-channel images in KeyPose's stored B, G, R order
            rec = make_keypose_record(image(i, 0, 3, 32)[:18, :, ::-1], image(i, 1, 3, 32)[:18, :, ::-1], kt_l, kt_r)
            out[split].append((f"{split}/{frame}", KEYPOSE.encode(rec)))
            i += 1
    return write_dataset(root, KEYPOSE.name, out)


def png_size(path) -> tuple[int, int]:
    """(width, height) of an image file."""
    img = cv2.imread(str(path))
    assert img is not None, path
    return img.shape[1], img.shape[0]
