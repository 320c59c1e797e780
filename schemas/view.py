"""The ``view`` record: one rendered view of one model (DESIGN §5, issue 2 field list).

Depth is stored as 16-bit PNG: ``z = value * depth/scale`` (model units or metres), 0 = no hit.
``camera/cam_T_obj`` maps the model's OBJ frame into the OpenCV camera frame.
"""
from __future__ import annotations

import numpy as np

from schemas.features import PNG_FAST, PNG_FAST_NONE, PNG_FAST_RLE, PNGImage, Schema, SchemaError, Tensor, Text

VIEW = Schema("view", "1.0.0", (
    Text("key", doc="unique record key, <synset>/<model_id>/v<index:06d>"),
    Text("synset", doc="ShapeNet synset id"),
    Text("model_id"),
    Tensor("seed", dtype="int64", doc="the run's seed; the view's generator is rng_for(seed, key)"),
    PNGImage("image/encoded", shape=(None, None, 4), dims=("H", "W"), doc="RGBA, alpha = coverage", png=PNG_FAST_NONE),
    Tensor("image/height", dtype="int64"),
    Tensor("image/width", dtype="int64"),
    PNGImage("mask/encoded", shape=(None, None), dims=("H", "W"), doc="object mask, 0 or 255", png=PNG_FAST_RLE),
    PNGImage("depth/encoded", shape=(None, None), dims=("H", "W"), dtype="uint16",
             doc="z-depth = value * depth/scale, 0 = no hit", png=PNG_FAST),
    Tensor("depth/scale", dtype="float32"),
    Tensor("camera/K", shape=(9,), array=(3, 3), doc="3x3 intrinsics, row-major, OpenCV pixel convention"),
    Tensor("camera/cam_T_obj", shape=(16,), array=(4, 4), doc="4x4 object->camera, row-major, OpenCV camera frame"),
    Tensor("viewpoint", shape=(4,), doc="azimuth, elevation, tilt (degrees), distance"),
    Text("keypoints/names", shape=(None,), dims=("K",)),
    Tensor("keypoints/uv", shape=(None,), dims=("K",), stride=2, doc="K x (u, v) pixels, flattened"),
    Tensor("keypoints/z", shape=(None,), dims=("K",), doc="z-depth of each keypoint"),
    Tensor("keypoints/xyz", shape=(None,), dims=("K",), stride=3, doc="K x (x, y, z) in the OBJ frame, flattened"),
    Tensor("keypoints/visible", shape=(None,), dims=("K",), dtype="int64",
           doc="1 = inside the image and not occluded"),
))

DEPTH_MAX_CODE = 65535


def encode_depth(depth) -> tuple[np.ndarray, float]:
    """(H, W) float z-depth -> (uint16 codes, scale) with ``depth ~= codes * scale``.

    The scale is chosen per image so the farthest hit uses the top code; the rounding error is at
    most ``scale / 2`` (about 8e-6 of the farthest depth).
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise SchemaError(f"depth: expected (H, W), got {depth.shape}")
    zmin, zmax = (float(depth.min()), float(depth.max())) if depth.size else (0.0, 0.0)
    if not (zmin >= 0 and np.isfinite(zmax)):  # NaN fails both comparisons
        raise SchemaError("depth: values must be finite and >= 0")
    scale = np.float32(zmax / DEPTH_MAX_CODE) if zmax > 0 else np.float32(1.0)
    while zmax > 0 and np.round(zmax / float(scale)) > DEPTH_MAX_CODE:  # float32 rounding went down
        scale = np.nextafter(scale, np.float32(np.inf))
    quotient = depth / float(scale)
    codes = np.rint(quotient, out=quotient).astype(np.uint16)
    np.maximum(codes, depth > 0, out=codes)  # a hit never reads as "no hit" (0 -> 1)
    return codes, float(scale)


def decode_depth(codes, scale: float) -> np.ndarray:
    """uint16 codes and scale -> (H, W) float32 z-depth."""
    return (np.asarray(codes, dtype=np.float64) * float(np.float32(scale))).astype(np.float32)


def make_view_record(*, key, synset, model_id, seed, rgba, depth, K, cam_T_obj, viewpoint,
                     names, uv, z, xyz, visible) -> dict:
    """Arrays of one rendered view -> a VIEW record ready for ``VIEW.encode``; derives the depth
    codes and scale (:func:`encode_depth`), the mask (255 where depth > 0) and the image size.

    rgba (H, W, 4) uint8; depth (H, W) float z-depth; K (3, 3); cam_T_obj (4, 4);
    viewpoint (4,); names (K,); uv (K, 2); z (K,); xyz (K, 3); visible (K,) bool.
    """
    codes, scale = encode_depth(depth)
    h, w = codes.shape
    return VIEW.record({
        "key": key, "synset": synset, "model_id": model_id, "seed": seed,
        "image/encoded": rgba, "image/height": h, "image/width": w,
        "mask/encoded": np.multiply(codes > 0, 255, dtype=np.uint8), "depth/encoded": codes, "depth/scale": scale,
        "camera/K": K, "camera/cam_T_obj": cam_T_obj, "viewpoint": viewpoint,
        "keypoints/names": names, "keypoints/uv": uv, "keypoints/z": z, "keypoints/xyz": xyz,
        "keypoints/visible": visible,
    })


def decode_view(data: bytes, fields=None) -> dict:
    """Parse a serialised VIEW Example in the array shapes (``keypoints/uv`` (K, 2),
    ``keypoints/xyz`` (K, 3), ``camera/K`` (3, 3), ``camera/cam_T_obj`` (4, 4)); adds ``depth``
    (H, W) float32 when both depth fields are read."""
    rec = VIEW.decode(data, fields, arrays=True)
    if "depth/encoded" in rec and "depth/scale" in rec:
        rec["depth"] = decode_depth(rec["depth/encoded"], rec["depth/scale"])
    return rec
