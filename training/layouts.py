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
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from kpdata import geometry
from training import spec
from training.data import decode_png

# OpenGL camera frame -> OpenCV camera frame, from the project's one conversion function.
_GL_TO_CV = tf.constant(geometry.gl_to_cv(np.eye(4)), tf.float32)


@dataclasses.dataclass
class Layout:
    record: str
    fields_by_task: dict                      # {task: [field names]}
    adapters: dict                            # {task: fn(parsed, source) -> sample}
    grouper: Callable | None = None           # fn(task, ds, training, seed) -> ds
    schema_override: object = None

    @property
    def schema(self):
        return self.schema_override or spec.find_schema(self.record)

    def _check(self, task: str):
        if task not in self.adapters:
            raise ValueError(f"the {self.record!r} layout cannot train the {task!r} task "
                             f"(it serves {sorted(self.adapters)})")

    def fields(self, task: str) -> list[str]:
        self._check(task)
        return self.fields_by_task[task]

    def adapter(self, task: str, source):
        self._check(task)
        fn = self.adapters[task]
        return lambda parsed: fn(parsed, source)

    def group(self, task: str, ds, *, training: bool, seed: int):
        return self.grouper(task, ds, training, seed) if self.grouper else ds


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

    plain = tf.autograph.experimental.do_not_convert
    ds = ds.group_by_window(plain(key), plain(pair), window_size=2)

    def to_pair(b):
        out = {"key": tf.strings.join([b["key"][0], b["key"][1]], "+")}
        for i in (0, 1):
            for name in ("image", "mask", "K", "T"):
                out[f"{name}{i}"] = b[name][i]
        return out

    return ds.map(tf.autograph.experimental.do_not_convert(to_pair), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


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
    plan = spec.parse_plan(get("keypointnet").schema, ["img0", "img1"])
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


register(Layout(
    record="keypointnet",
    fields_by_task={"keypointnet": ["img0", "img1", "mv0", "mv1"]},
    adapters={"keypointnet": _keypointnet_pair},
))
