"""The ``kp2d_pair`` record: one homography-adapted pair made from one photo (formats §4.2, §4.5).

Naming follows KP2D's sample dict: ``image`` is the photo (KP2D's "target"), ``image_aug`` the
warped photo (KP2D's "source"), and ``homography`` maps a point of ``image_aug`` to the point of
``image`` it shows: ``image_aug(p) = image(H p)``. It is stored twice: in KP2D's normalised
``[-1, 1]`` coordinates (``x_n = 2 x / (W - 1) - 1``, align_corners) exactly as KP2D's
``data['homography']``, and in OpenCV pixels. Both are 3x3, row-major, ``H[2, 2] = 1``.
"""
from __future__ import annotations

import numpy as np

from schemas.features import PNGImage, Schema, Tensor, Text

KP2D_PAIR = Schema("kp2d_pair", "1.0.0", (
    Text("key", doc="unique record key, <image path relative to the input folder>/p<index:04d>"),
    Text("image_path", doc="the photo's path relative to the input folder ('/'-separated)"),
    Tensor("seed", dtype="int64", doc="the run's seed; the pair's generator is rng_for(seed, key)"),
    Tensor("pair_index", dtype="int64", doc="index of the pair among the photo's pairs"),
    PNGImage("image/encoded", shape=(None, None, 3), dims=("H", "W"),
             doc="RGB: the resized photo (KP2D 'image', the target), after the non-spatial augmentation"),
    PNGImage("image_aug/encoded", shape=(None, None, 3), dims=("H", "W"),
             doc="RGB: the warped photo (KP2D 'image_aug', the source), after the non-spatial augmentation"),
    Tensor("image/height", dtype="int64"),
    Tensor("image/width", dtype="int64"),
    Tensor("homography", shape=(9,), array=(3, 3),
           doc="3x3 row-major, normalised [-1, 1] (align_corners): image_aug point -> image point (KP2D)"),
    Tensor("homography/pixels", shape=(9,), array=(3, 3),
           doc="3x3 row-major, the same map in OpenCV pixels: image_aug pixel -> image pixel"),
    Tensor("source/height", dtype="int64", doc="the photo's height before resizing"),
    Tensor("source/width", dtype="int64", doc="the photo's width before resizing"),
))


def make_pair_record(*, key, image_path, seed, pair_index, image, image_aug, homography,
                     homography_pixels, source_size) -> dict:
    """Arrays of one pair -> a KP2D_PAIR record for ``KP2D_PAIR.encode``; derives the image size
    fields from ``image`` and ``source/*`` from ``source_size``.

    image, image_aug: (H, W, 3) uint8 RGB; homography, homography_pixels: (3, 3);
    source_size: (W, H) of the photo before resizing.
    """
    h, w = np.shape(image)[:2]
    return KP2D_PAIR.record({
        "key": key, "image_path": image_path, "seed": seed, "pair_index": pair_index,
        "image/encoded": image, "image_aug/encoded": image_aug, "image/height": h, "image/width": w,
        "homography": homography, "homography/pixels": homography_pixels,
        "source/height": source_size[1], "source/width": source_size[0],
    })


def decode_pair(data: bytes, fields=None) -> dict:
    """Parse a serialised KP2D_PAIR Example; the homographies come back as (3, 3)."""
    return KP2D_PAIR.decode(data, fields, arrays=True)
