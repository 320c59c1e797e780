"""The ``keypose`` record: one stereo frame as KeyPose's own parser reads it (formats.md §2.6).

Exactly KeyPose's features, no others (``inputs.py:parser`` takes these names), for ``pf`` in
``L``, ``R``: ``img_{pf}`` (PNG, 3 channels in **B, G, R** order: the ``cv2.imread`` array of the
frame, resized, encoded as it is, exactly what KeyPose's ``gen_tfrecords`` stores; no alpha, so
KeyPose's ``decode_png(..., 4)`` makes it fully opaque; formats.md §2.5, §2.9),
``to_world_{pf}`` (4x4 = inv(T) Q), ``to_uvd_{pf}`` (4x4 = P T), ``camera_{pf}`` (fx, fy, cx, cy,
baseline, resx, resy), ``keys_uvd_{pf}`` (K x [u, v, disparity, 1]), ``visible_{pf}`` (K),
``num_kp_{pf}``, ``num_targets_{pf}``, ``targets_to_uvd_{pf}`` (5 x 4x4), ``targets_keys_uvd_{pf}``
(5 x K x 4), and ``mirrored``. Matrices are row-major float lists.
"""
from __future__ import annotations

import numpy as np

from kpdata import keypose
from schemas.features import PNGImage, Schema, Tensor

T = keypose.MAX_TARGET_FRAMES


def _fields(pf: str) -> tuple:
    return (
        PNGImage(f"img_{pf}", shape=(None, None, 3), dims=("H", "W"),
                 doc="B, G, R uint8 (the cv2.imread array, as KeyPose stores it), opaque: no alpha"),
        Tensor(f"to_world_{pf}", shape=(4, 4), doc="inv(cam_T_world) @ Q: uvd1 -> world"),
        Tensor(f"to_uvd_{pf}", shape=(4, 4), doc="P @ cam_T_world: world -> uvd"),
        Tensor(f"camera_{pf}", shape=(7,), doc="fx, fy, cx, cy, baseline (m), resx, resy of this image"),
        Tensor(f"keys_uvd_{pf}", shape=(None, 4), dims=("K",), doc="u, v, disparity fx*B/z, 1 per keypoint"),
        Tensor(f"visible_{pf}", shape=(None,), dims=("K",), doc="1.0 = keypoint on the image"),
        Tensor(f"num_kp_{pf}", dtype="int64"),
        Tensor(f"num_targets_{pf}", dtype="int64", doc="proj targets before padding (<= 5)"),
        Tensor(f"targets_to_uvd_{pf}", shape=(T, 4, 4), doc="P @ T of each proj target; padding: zeros, [3,3]=1"),
        Tensor(f"targets_keys_uvd_{pf}", shape=(T, None, 4), dims=("K",),
               doc="keys_uvd of each proj target; padding rows [0, 0, 0, 1]"),
    )


KEYPOSE = Schema("keypose", "1.0.0", _fields("L") + _fields("R") + (
    Tensor("mirrored", dtype="int64", doc="KeyTargets.mirrored"),))


def dummy_to_uvd() -> np.ndarray:
    m = np.zeros((4, 4))
    m[3, 3] = 1.0
    return m


def dummy_keys_uvd(num_kp: int) -> np.ndarray:
    k = np.zeros((num_kp, 4))
    k[:, 3] = 1.0
    return k


def frame_features(kt, pf: str) -> dict:
    """The numeric features of one side (``pf`` = ``L`` or ``R``) of a (resized) KeyTargets, in
    float64 / int (:data:`KEYPOSE` casts them): the main target's matrices, camera, keys and
    visibility, and its proj targets padded to ``T`` with :func:`dummy_to_uvd` / :func:`dummy_keys_uvd`."""
    main = keypose.target_arrays(kt.kp_target)
    num_kp = len(main.keys_uvd)
    projs = [keypose.target_arrays(t) for t in list(kt.proj_targets)[:T]]
    for i, p in enumerate(projs):
        if len(p.keys_uvd) != num_kp:
            raise ValueError(f"proj_targets[{i}] has {len(p.keys_uvd)} keypoints, kp_target has {num_kp}")
    to_uvd = [p.to_uvd for p in projs] + [dummy_to_uvd()] * (T - len(projs))
    keys = [p.keys_uvd for p in projs] + [dummy_keys_uvd(num_kp)] * (T - len(projs))
    return {
        f"to_world_{pf}": main.to_world, f"to_uvd_{pf}": main.to_uvd, f"camera_{pf}": main.camera,
        f"keys_uvd_{pf}": main.keys_uvd, f"visible_{pf}": main.visible, f"num_kp_{pf}": num_kp,
        f"num_targets_{pf}": len(projs), f"targets_to_uvd_{pf}": np.stack(to_uvd),
        f"targets_keys_uvd_{pf}": np.stack(keys),
    }


def bgr_to_rgb(img) -> np.ndarray:
    """A decoded ``img_L`` / ``img_R`` (B, G, R, as KeyPose stores it) in R, G, B order, for display."""
    return np.ascontiguousarray(np.asarray(img)[..., ::-1])


def make_keypose_record(img_l, img_r, kt_l, kt_r) -> dict:
    """(H, W, 3) uint8 **B, G, R** images (``cv2.imread`` order, see the module docstring) and
    resized KeyTargets of both sides -> a KEYPOSE record. The PNGs hold the arrays' channels as
    they are, so a standard PNG decoder (``tf.io.decode_png``, PIL) returns B, G, R."""
    return KEYPOSE.record({"img_L": img_l, "img_R": img_r, **frame_features(kt_l, "L"), **frame_features(kt_r, "R"),
                           "mirrored": int(kt_l.mirrored)})


def decode_keypose(data: bytes, fields=None) -> dict:
    """Parse a KEYPOSE Example: images as the stored (H, W, 3) B, G, R arrays (:func:`bgr_to_rgb`
    for display), matrices in their shapes."""
    return KEYPOSE.decode(data, fields)
