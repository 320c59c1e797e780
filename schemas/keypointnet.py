"""The ``keypointnet_pair`` record: two views of one object, as KeypointNet's input parser reads
them (formats.md §1.2), plus optional extras that parser ignores.

The six features of the original (``main.py``'s spec, exactly):

* ``img0``, ``img1``: PNG, RGBA uint8, 128x128 by default; alpha = the object's silhouette
  (255 inside, 0 on the black background);
* ``mv0``, ``mv1``: 16 float32, the 4x4 model-view matrix row-major: object frame (centred,
  largest extent 2, Y-up) -> OpenGL camera (x right, y up, looking down -z);
* ``mvi0``, ``mvi1``: 16 float32, the inverses.

Extras (``EXTRA_FIELDS``; present unless the run used ``--extras none``): the key, ids, seed,
each view's viewpoint (azimuth, elevation, tilt = -roll, distance; before the location jitter),
the object normalisation (``obj = (x_OBJ - center) * scale``), and the ground-truth keypoints where
the model is annotated: names, ``xyz`` (object frame), per view ``uv`` (OpenCV pixels: centre of
pixel (0, 0) at (0, 0); KeypointNet's NDC ``x = (u + 0.5) / (W / 2) - 1``, ``y = 1 - (v + 0.5) /
(H / 2)``) and ``visible`` (inside the image and not occluded).
"""
from __future__ import annotations

import numpy as np

from schemas import example_proto
from schemas.features import PNGImage, Schema, Tensor, Text

CORE_FIELDS = (
    PNGImage("img0", shape=(None, None, 4), dims=("H", "W"), doc="view 0, RGBA, alpha = silhouette"),
    PNGImage("img1", shape=(None, None, 4), dims=("H", "W"), doc="view 1, RGBA, alpha = silhouette"),
    Tensor("mv0", shape=(16,), array=(4, 4), doc="4x4 object -> OpenGL camera 0, row-major"),
    Tensor("mvi0", shape=(16,), array=(4, 4), doc="inverse of mv0, row-major"),
    Tensor("mv1", shape=(16,), array=(4, 4), doc="4x4 object -> OpenGL camera 1, row-major"),
    Tensor("mvi1", shape=(16,), array=(4, 4), doc="inverse of mv1, row-major"),
)

EXTRA_FIELDS = (
    Text("key", doc="unique record key, <synset>/<model_id>/p<index:06d>"),
    Text("synset", doc="ShapeNet synset id"),
    Text("model_id"),
    Tensor("seed", dtype="int64", doc="the run's seed; the pair's generator is rng_for(seed, key)"),
    Tensor("viewpoint0", shape=(4,), doc="view 0: azimuth, elevation, tilt (degrees), distance, before jitter"),
    Tensor("viewpoint1", shape=(4,), doc="view 1: azimuth, elevation, tilt (degrees), distance, before jitter"),
    Tensor("object/center", shape=(3,), doc="bounding-box centre in the OBJ frame"),
    Tensor("object/scale", doc="object frame = (OBJ frame - center) * scale"),
    Text("keypoints/names", shape=(None,), dims=("K",)),
    Tensor("keypoints/xyz", shape=(None,), dims=("K",), stride=3, doc="K x (x, y, z), object frame, flattened"),
    Tensor("keypoints/uv0", shape=(None,), dims=("K",), stride=2, doc="K x (u, v) pixels in view 0"),
    Tensor("keypoints/visible0", shape=(None,), dims=("K",), dtype="int64", doc="1 = visible in view 0"),
    Tensor("keypoints/uv1", shape=(None,), dims=("K",), stride=2, doc="K x (u, v) pixels in view 1"),
    Tensor("keypoints/visible1", shape=(None,), dims=("K",), dtype="int64", doc="1 = visible in view 1"),
)

KEYPOINTNET_PAIR = Schema("keypointnet_pair", "1.0.0", CORE_FIELDS + EXTRA_FIELDS)
KEYPOINTNET_PAIR_CORE = Schema("keypointnet_pair", "1.0.0", CORE_FIELDS)


def schema(extras: bool) -> Schema:
    return KEYPOINTNET_PAIR if extras else KEYPOINTNET_PAIR_CORE


def make_pair_record(*, img0, img1, mv0, mv1, extras: dict | None = None) -> dict:
    """A record for :data:`KEYPOINTNET_PAIR` (``extras`` given) or the core schema; derives
    ``mvi0``/``mvi1`` (the inverses, computed in float64).

    img0, img1: (H, W, 4) uint8; mv0, mv1: (4, 4) (or 16 row-major); extras: the values of
    :data:`EXTRA_FIELDS` by field name (``key``, ``synset``, ``model_id``, ``seed``,
    ``viewpoint0``/``1`` (4,), ``object/center`` (3,), ``object/scale``, ``keypoints/names`` (K,),
    ``keypoints/xyz`` (K, 3), ``keypoints/uv0``/``uv1`` (K, 2), ``keypoints/visible0``/``1`` (K,) bool).
    """
    mv0 = np.asarray(mv0, dtype=np.float64).reshape(4, 4)
    mv1 = np.asarray(mv1, dtype=np.float64).reshape(4, 4)
    core = {"img0": img0, "img1": img1, "mv0": mv0, "mvi0": np.linalg.inv(mv0), "mv1": mv1, "mvi1": np.linalg.inv(mv1)}
    return schema(extras is not None).record({**core, **(extras or {})})


def decode_pair(data: bytes, fields=None) -> dict:
    """Parse a serialised pair in the array shapes: matrices (4, 4), ``xyz`` (K, 3), ``uv0``/``uv1``
    (K, 2). Extras are decoded when present."""
    present = set(example_proto.parse_example(data).features.feature)
    has_extras = all(f.name in present for f in EXTRA_FIELDS)
    if fields is not None:
        fields = [f for f in fields if f in present]
    return schema(has_extras).decode(data, fields, arrays=True)
