"""Record layouts the trainers read: each maps its parsed record onto the task's common sample.

A layout = a record type (its ``schemas.Schema``, found by name in ``schemas/``), the fields each
task needs, an adapter per task (parsed fields -> sample dict, below), and optionally a grouping
step (the ``view`` layout forms KeypointNet pairs from two views of one model). Adding a layout
is one :func:`register` call; the parsing spec always comes from the schema.

Samples (tensors of one record; images (H, W, 3) uint8 RGB, masks (H, W) bool):

- ``keypoints`` / ``viewpoint``: ``key``, ``image``, ``mask``, ``uv`` (K, 2) float32 pixels (OpenCV
  convention), ``visible`` (K,) bool, ``classes`` (K,) string ``<category>/<keypoint name>``,
  ``category`` string, ``angles`` (3,) float32 azimuth, elevation, tilt in degrees.
- ``keypointnet``: per view ``i`` in {0, 1}: ``image{i}``, ``mask{i}``, ``K{i}`` (3, 3) pixels,
  ``T{i}`` (4, 4) float32 object -> OpenCV camera; ``key``.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from kpdata import geometry
from kpdata.clickhere import KeypointClassTable
from kpdata.clickhere.kde import R4CNN_CLASSES
from schemas import clickhere as clickhere_schema
from schemas import keypointnet as keypointnet_schema
from schemas import keypose as keypose_schema
from schemas.dataset import lmdb
from training import readers, spec
from training.readers import AUTOTUNE, decode_png, plain

CAFFE_RECORD = clickhere_schema.CAFFE_LAYOUT.name  # dataset_info.json's record of Click-Here's LMDB layout

# OpenGL camera frame -> OpenCV camera frame, from the project's one conversion function.
_GL_TO_CV = tf.constant(geometry.gl_to_cv(np.eye(4)), tf.float32)


@dataclasses.dataclass
class Layout:
    """``fields_by_task[task]``: the record fields a task needs, or a function of the task object
    (None while scanning the training split before the task exists) returning them.
    ``reader``: fn(layout, source, split, fields, shuffle, seed, repeat, limit) -> dataset of
    parsed dicts, for layouts whose records are not one serialized Example each (default:
    :func:`read_examples`)."""

    record: str
    fields_by_task: dict                      # {task: [field names] or fn(task) -> [field names]}
    adapters: dict                            # {task: fn(parsed, source) -> sample}
    grouper: Callable | None = None           # fn(task, ds, training, seed) -> ds
    schema_override: object = None
    reader: Callable | None = None

    @property
    def schema(self):
        return self.schema_override or spec.find_schema(self.record)

    def _check(self, task: str):
        if task not in self.adapters:
            raise ValueError(f"the {self.record!r} layout cannot train the {task!r} task "
                             f"(it serves {sorted(self.adapters)})")

    def fields(self, task: str, task_obj=None) -> list[str]:
        self._check(task)
        f = self.fields_by_task[task]
        return list(f(task_obj) if callable(f) else f)

    def read(self, source, split: str, task: str, *, shuffle: bool, seed: int, repeat: bool,
             limit: int | None = None, task_obj=None):
        """Parsed records (dicts of tensors) of ``split`` with the fields ``task`` needs."""
        fields = self.fields(task, task_obj)
        return (self.reader or read_examples)(self, source, split, fields, shuffle, seed, repeat, limit)

    def adapter(self, task: str, source):
        self._check(task)
        fn = self.adapters[task]
        return lambda parsed: fn(parsed, source)

    def group(self, task: str, ds, *, training: bool, seed: int):
        return self.grouper(task, ds, training, seed) if self.grouper else ds


def read_examples(layout, source, split, fields, shuffle, seed, repeat, limit):
    """One serialized ``tf.train.Example`` per record (TFRecord shards or LMDB values), parsed
    with the spec generated from the layout's schema."""
    parse = readers.make_parser(layout.schema, fields)
    ds = readers.records(source, split, shuffle=shuffle, seed=seed, repeat=repeat)
    if limit:
        ds = ds.take(limit)
    return ds.map(plain(parse), num_parallel_calls=AUTOTUNE, deterministic=True)


LAYOUTS: dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    LAYOUTS[layout.record] = layout
    return layout


def get(record: str) -> Layout:
    if record not in LAYOUTS:
        raise KeyError(f"no training layout for record type {record!r} (known: {sorted(LAYOUTS)}); "
                       f"register one in training/layouts.py")
    return LAYOUTS[record]


def _rgb_on_black(rgba):
    """(H, W, 4) uint8 -> (H, W, 3) uint8 composited over black."""
    rgb = tf.cast(rgba[..., :3], tf.float32) * (tf.cast(rgba[..., 3:], tf.float32) / 255.0)
    return tf.cast(tf.round(rgb), tf.uint8)


# ------------------------------------------------------------------------------------------
# view (render_shapenet's default)
# ------------------------------------------------------------------------------------------

_VIEW_IMAGE = ["image/encoded", "mask/encoded"]


def _view_png(parsed, name):
    return spec.parse_plan(spec.find_schema("view"), [name])[name], parsed[name]


def _view_image(parsed):
    entry, raw = _view_png(parsed, "image/encoded")
    image = _rgb_on_black(decode_png(entry, raw))
    entry, raw = _view_png(parsed, "mask/encoded")
    mask = decode_png(entry, raw)[..., 0] > 0
    return image, mask


def _view_keypoints(parsed, source):
    image, mask = _view_image(parsed)
    names = parsed["keypoints/names"]
    return {
        "image": image, "mask": mask,
        "uv": tf.reshape(parsed["keypoints/uv"], [-1, 2]),
        "visible": parsed["keypoints/visible"] > 0,
        "classes": tf.strings.join([tf.fill(tf.shape(names), parsed["synset"]), names], "/"),
        "category": parsed["synset"],
        "angles": parsed["viewpoint"][:3],
        "key": parsed["key"],
    }


def _view_pose(parsed, source):
    image, mask = _view_image(parsed)
    return {"image": image, "mask": mask, "K": tf.reshape(parsed["camera/K"], [3, 3]),
            "T": tf.reshape(parsed["camera/cam_T_obj"], [4, 4]), "model": parsed["model_id"],
            "key": parsed["key"]}


def _view_pairs(task, ds, training, seed):
    """KeypointNet pairs from two views of the same model: views are grouped by model id in
    windows of two (consecutive views of a model in a pass in key order; random partners after
    the training shuffle)."""
    if task != "keypointnet":
        return ds

    def key(s):
        return tf.strings.to_hash_bucket_fast(s["model"], 1 << 62)

    def pair(_, window):
        return window.batch(2, drop_remainder=True)

    ds = ds.group_by_window(plain(key), plain(pair), window_size=2)

    def to_pair(b):
        out = {"key": tf.strings.join([b["key"][0], b["key"][1]], "+")}
        for i in (0, 1):
            for name in ("image", "mask", "K", "T"):
                out[f"{name}{i}"] = b[name][i]
        return out

    return ds.map(plain(to_pair), num_parallel_calls=AUTOTUNE, deterministic=True)


_VIEW_KP_FIELDS = _VIEW_IMAGE + ["key", "synset", "keypoints/names", "keypoints/uv", "keypoints/visible", "viewpoint"]
register(Layout(
    record="view",
    fields_by_task={"keypoints": _VIEW_KP_FIELDS, "viewpoint": _VIEW_KP_FIELDS,
                    "keypointnet": _VIEW_IMAGE + ["key", "model_id", "camera/K", "camera/cam_T_obj"]},
    adapters={"keypoints": _view_keypoints, "viewpoint": _view_keypoints, "keypointnet": _view_pose},
    grouper=_view_pairs,
))


# ------------------------------------------------------------------------------------------
# keypointnet (formats §1.2: img0, img1 RGBA PNG; mv0, mvi0, mv1, mvi1 row-major OpenGL
# model-view matrices; the folder's projection.txt gives the NDC focal)
# ------------------------------------------------------------------------------------------

def keypointnet_K(projection, width, height):
    """Pixel intrinsics (3, 3) of a KeypointNet projection matrix (16 floats, row-major) for a
    ``width`` x ``height`` image: NDC x = (u + 0.5) / (W / 2) - 1 = p00 X / Z (OpenCV camera
    frame), with +v down in pixels (formats §1.4)."""
    p = np.asarray(projection, dtype=np.float64).reshape(4, 4)
    return np.array([[p[0, 0] * width / 2, 0, width / 2 - 0.5],
                     [0, p[1, 1] * height / 2, height / 2 - 0.5],
                     [0, 0, 1]], dtype=np.float32)


def _keypointnet_pair(parsed, source):
    if source.projection is None:
        raise ValueError(f"{source.data_dir}: KeypointNet records need projection.txt beside them")
    plan = spec.parse_plan(keypointnet_schema.KEYPOINTNET_PAIR_CORE, ["img0", "img1"])
    out = {"key": parsed["key"] if "key" in parsed else tf.constant("")}
    for i in (0, 1):
        rgba = decode_png(plan[f"img{i}"], parsed[f"img{i}"])
        h, w = tf.unstack(tf.cast(tf.shape(rgba)[:2], tf.float32))
        p00, p11 = float(source.projection[0]), float(source.projection[5])
        out[f"image{i}"] = _rgb_on_black(rgba)
        out[f"mask{i}"] = rgba[..., 3] > 0
        out[f"K{i}"] = tf.stack([tf.stack([p00 * w / 2, 0.0, w / 2 - 0.5]),
                                 tf.stack([0.0, p11 * h / 2, h / 2 - 0.5]), tf.constant([0.0, 0.0, 1.0])])
        mv = tf.reshape(tf.cast(parsed[f"mv{i}"], tf.float32), [4, 4])
        out[f"T{i}"] = _GL_TO_CV @ mv
    return out


# The six original features only: a dataset written with --extras none, or by KeypointNet's own
# tools, has nothing else (the extras are never needed for training).
_KEYPOINTNET_FIELDS = {"keypointnet": ["img0", "img1", "mv0", "mv1"]}
# render_shapenet --layout keypointnet (dataset_info.json: record keypointnet_pair)
register(Layout(record=keypointnet_schema.KEYPOINTNET_PAIR.name, fields_by_task=_KEYPOINTNET_FIELDS,
                adapters={"keypointnet": _keypointnet_pair}, schema_override=keypointnet_schema.KEYPOINTNET_PAIR_CORE))
# a KeypointNet folder without dataset_info.json (*.tfrecord, dev.txt, test.txt, projection.txt)
register(Layout(record=spec.KEYPOINTNET_RECORD, fields_by_task=_KEYPOINTNET_FIELDS,
                adapters={"keypointnet": _keypointnet_pair}, schema_override=keypointnet_schema.KEYPOINTNET_PAIR_CORE))


# ------------------------------------------------------------------------------------------
# Click-Here (render_shapenet --layout clickhere, formats §3.6 - §3.8): three record kinds, one
# instance (a crop, one keypoint, its class one-hot, the viewpoint label) each after reading:
#   clickhere_instance  TFRecord shards of Examples (the full maps included)
#   caffe_datum         Click-Here's LMDBs, one per field, Caffe Datum values (schemas/caffe.py)
#   clickhere_view      the compact record (one per view); schemas.clickhere.expand rebuilds its
#                       instances and their maps at read time
# Every reader yields the same instance dict: key, image (227, 227, 3) uint8 RGB, keypoint_pixel
# (2,) int64 (x, y), keypoint_class (C,) int64 one-hot, viewpoint_label (4,) int64
# [cls, az+360cls, el+360cls, tilt+360cls], and chessboard_dt_map (227, 227) float32 when the
# viewpoint task takes Click-Here's keypoint inputs (--keypoint_map).
# ------------------------------------------------------------------------------------------

_S = clickhere_schema.S
_CH_BASE = ["key", "image", "keypoint_pixel", "keypoint_class", "viewpoint_label"]


def _clickhere_fields(task_obj):
    """The instance fields a task reads (the distance map only for --keypoint_map)."""
    return _CH_BASE + (["chessboard_dt_map"] if getattr(task_obj, "keypoint_map", False) else [])


def _instance_signature(fields, num_classes=None):
    sig = {"key": tf.TensorSpec([], tf.string), "image": tf.TensorSpec([_S, _S, 3], tf.uint8),
           "keypoint_pixel": tf.TensorSpec([2], tf.int64), "keypoint_class": tf.TensorSpec([num_classes], tf.int64),
           "viewpoint_label": tf.TensorSpec([4], tf.int64), "chessboard_dt_map": tf.TensorSpec([_S, _S], tf.float32)}
    return {f: sig[f] for f in fields}


def _read_clickhere_instances(layout, source, split, fields, shuffle, seed, repeat, limit):
    """clickhere_instance Examples -> instance dicts (PNG decoded, the map reshaped)."""
    names = {"image": "image/encoded"}
    parsed = read_examples(layout, source, split, [names.get(f, f) for f in fields], shuffle, seed, repeat, limit)
    plan = spec.parse_plan(clickhere_schema.CLICKHERE_INSTANCE, ["image/encoded"])

    def to_instance(p):
        out = {f: p[names.get(f, f)] for f in fields}
        out["image"] = decode_png(plan["image/encoded"], p["image/encoded"])
        if "chessboard_dt_map" in out:
            out["chessboard_dt_map"] = tf.reshape(out["chessboard_dt_map"], [_S, _S])
        return out

    return parsed.map(plain(to_instance), num_parallel_calls=AUTOTUNE,
                      deterministic=True)


def _caffe_instances(split_dir: str, fields: tuple, seed: int, shuffle: bool):
    """Instances of one split folder of Click-Here's LMDBs, read from the LMDBs of the fields
    needed only (key order, or a seeded permutation)."""
    lmdb_fields = [f for f in clickhere_schema.CAFFE_FIELDS
                   if f in fields or (f == "keypoint_loc" and "keypoint_pixel" in fields)]
    envs = {f: lmdb.shared_reader(os.path.join(split_dir, clickhere_schema.lmdb_name(f))) for f in lmdb_fields}
    with envs["image"].begin() as txn:
        keys = [bytes(k) for k in txn.cursor().iternext(keys=True, values=False)]
    order = np.random.default_rng(seed).permutation(len(keys)) if shuffle else range(len(keys))
    for i in order:
        datums = {}
        for f, env in envs.items():
            with env.begin() as txn:
                value = txn.get(keys[i])
            if value is None:
                raise ValueError(f"{split_dir}/{clickhere_schema.lmdb_name(f)}: no value for key {keys[i]!r} "
                                 f"(the Click-Here LMDBs must hold identical key sets)")
            datums[f] = value
        try:
            inst = clickhere_schema.instance_from_datums(datums)
        except ValueError as e:
            raise ValueError(f"{split_dir}: key {keys[i]!r}: {e}") from None
        inst["key"] = keys[i]
        yield {f: _as_signature_dtype(f, inst[f]) for f in fields}


def _as_signature_dtype(field, value):
    if field in ("keypoint_class", "keypoint_pixel", "viewpoint_label"):
        return np.asarray(value, np.int64)
    if field == "chessboard_dt_map":
        return np.asarray(value, np.float32)
    return value


def _read_caffe(layout, source, split, fields, shuffle, seed, repeat, limit):
    sig = _instance_signature(fields)
    files = tf.data.Dataset.from_tensor_slices(source.files(split))
    files = files.repeat() if repeat else files
    ds = tf.data.Dataset.zip((files, tf.data.Dataset.counter().map(lambda i: i + seed)))

    def split_instances(path, salt):
        return tf.data.Dataset.from_generator(
            lambda p, s: _caffe_instances(p.decode(), tuple(fields), int(s), shuffle), args=(path, salt),
            output_signature=sig)

    ds = ds.interleave(split_instances, cycle_length=1, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.take(limit) if limit else ds


def _expand_compact(raw, fields):
    """A compact clickhere_view record -> its instances stacked (numpy), rebuilt by
    ``schemas.clickhere.expand`` (the maps of the full layouts, bit for bit)."""
    insts = clickhere_schema.expand(clickhere_schema.decode_view(bytes(raw)), fields)
    out = []
    for f in fields:
        if f == "key":
            out.append(np.asarray([i["key"].encode() for i in insts], dtype=object).reshape(len(insts)))
        else:
            out.append(np.stack([_as_signature_dtype(f, i[f]) for i in insts]))
    return out


def _read_compact(layout, source, split, fields, shuffle, seed, repeat, limit):
    sig = _instance_signature(fields)
    ds = readers.records(source, split, shuffle=shuffle, seed=seed, repeat=repeat)

    def expand(raw):
        values = tf.numpy_function(lambda r: _expand_compact(r, fields), [raw], [sig[f].dtype for f in fields],
                                   stateful=False)
        return {f: tf.ensure_shape(v, [None, *sig[f].shape]) for f, v in zip(fields, values)}

    ds = ds.map(plain(expand), num_parallel_calls=AUTOTUNE,
                deterministic=True).unbatch()
    if shuffle:  # a view's instances come out together; mix them with other views'
        ds = ds.shuffle(256, seed=seed, reshuffle_each_iteration=True)
    return ds.take(limit) if limit else ds


@functools.cache
def _class_names(source_dir: str, table: str) -> tuple:
    if table == "clickhere34":
        return KeypointClassTable.clickhere34().names
    path = table if os.path.isabs(table) or os.path.exists(table) else os.path.join(source_dir, table)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{source_dir}: the keypoint class table {table!r} it was written with "
                                f"(dataset_info.json config.keypoint_classes) is not found")
    return KeypointClassTable.from_file(path).names


def _clickhere_sample(inst, source):
    """A Click-Here instance -> the common sample: the whole 227x227 crop is the object box
    (``crop_margin`` 0), one keypoint (its pixel, class ``<class>_<keypoint>`` of the one-hot),
    the category and angles from the viewpoint label; plus the distance map when read."""
    table = source.info.get("config", {}).get("keypoint_classes", "clickhere34")
    class_names = list(_class_names(source.data_dir, table))
    names = tf.constant(class_names)
    label = inst["viewpoint_label"]
    cls = label[0]
    onehot = inst["keypoint_class"]
    kidx = tf.argmax(onehot, output_type=tf.int64)
    out = {
        "image": inst["image"], "mask": tf.ones([_S, _S], tf.bool), "crop_margin": tf.constant(0.0),
        "uv": tf.cast(tf.reshape(inst["keypoint_pixel"], [1, 2]), tf.float32),
        "visible": tf.reshape(tf.reduce_max(onehot) > 0, [1]),
        "classes": tf.reshape(tf.gather(names, tf.minimum(kidx, len(class_names) - 1)), [1]),
        "category": tf.gather(tf.constant(list(R4CNN_CLASSES)), cls),
        "angles": tf.cast(label[1:] - 360 * cls, tf.float32),
        "key": inst["key"],
    }
    if "chessboard_dt_map" in inst:
        out["keypoint_map"] = inst["chessboard_dt_map"]
    return out


_CH_TASKS = {"keypoints": _clickhere_sample, "viewpoint": _clickhere_sample}
_CH_FIELDS = {"keypoints": _CH_BASE, "viewpoint": _clickhere_fields}
register(Layout(record=clickhere_schema.CLICKHERE_INSTANCE.name, fields_by_task=_CH_FIELDS, adapters=_CH_TASKS,
                reader=_read_clickhere_instances))
register(Layout(record=clickhere_schema.CLICKHERE_VIEW.name, fields_by_task=_CH_FIELDS, adapters=_CH_TASKS,
                reader=_read_compact))
register(Layout(record=CAFFE_RECORD, fields_by_task=_CH_FIELDS, adapters=_CH_TASKS, reader=_read_caffe))


# ------------------------------------------------------------------------------------------
# KeyPose (gen_tfrecords, formats §2.6): stereo frames; the keypoints task's stereo variant
# predicts u, v and disparity of the left image's keypoints.
# ------------------------------------------------------------------------------------------

_KEYPOSE_FIELDS = ["img_L", "img_R", "keys_uvd_L", "visible_L", "to_world_L", "camera_L"]


def _keypoint_box_mask(uv, visible, h, w, min_grow=32.0):
    """(h, w) bool: the box of the visible keypoints grown by half its longer side (at least
    ``min_grow`` px) each way; the whole image when none is visible. KeyPose's records are opaque
    and carry no object mask, so the object crop is taken around the keypoints (as KeyPose's own
    input pipeline crops around their centroid)."""
    pts = tf.boolean_mask(uv, visible)
    lo, hi = tf.reduce_min(pts, axis=0), tf.reduce_max(pts, axis=0)  # +-inf when none is visible
    grow = tf.maximum(0.5 * tf.reduce_max(hi - lo), min_grow)
    xs = tf.cast(tf.range(w), tf.float32)[None, :]
    ys = tf.cast(tf.range(h), tf.float32)[:, None]
    box = (xs >= lo[0] - grow) & (xs <= hi[0] + grow) & (ys >= lo[1] - grow) & (ys <= hi[1] + grow)
    return box | tf.logical_not(tf.reduce_any(visible))


def _keypose_sample(parsed, source):
    plan = spec.parse_plan(keypose_schema.KEYPOSE, ["img_L", "img_R"])
    left = decode_png(plan["img_L"], parsed["img_L"])
    right = decode_png(plan["img_R"], parsed["img_R"])
    uvd = tf.reshape(parsed["keys_uvd_L"], [-1, 4])
    k = tf.shape(uvd)[0]
    # The records store B, G, R (KeyPose's cv2.imread order, formats.md §2.5); every other layout
    # feeds R, G, B, so the channels are reversed here.
    left, right = tf.reverse(left[..., :3], axis=[-1]), tf.reverse(right[..., :3], axis=[-1])
    return {
        "image": left, "image_r": right,
        "mask": _keypoint_box_mask(uvd[:, :2], parsed["visible_L"] > 0, tf.shape(left)[0], tf.shape(left)[1]),
        "uv": uvd[:, :2], "disparity": uvd[:, 2], "visible": parsed["visible_L"] > 0,
        "classes": tf.strings.join(["kp", tf.strings.as_string(tf.range(k), width=3, fill="0")]),
        "category": tf.constant("keypose"), "angles": tf.zeros([3]),
        "to_world": tf.reshape(parsed["to_world_L"], [4, 4]), "camera": parsed["camera_L"],
        "key": tf.constant(""),
    }


register(Layout(record=keypose_schema.KEYPOSE.name, fields_by_task={"keypoints": _KEYPOSE_FIELDS},
                adapters={"keypoints": _keypose_sample}))
